"""Runs Python snippets in forked children of one helper process (one
import of TensorFlow and tf_qdq for many cases), so that an abort or a segfault
fails only its case: used by test_hostile_inputs.py and test_fuzz.py."""
import json
import subprocess
import sys
import textwrap

CASE_TIMEOUT_S = 60

_PRELUDE = textwrap.dedent("""
    import os, sys
    import numpy as np
    import tensorflow as tf
    import tf_qdq
    R = tf_qdq.raw_ops
    U = tf.TensorSpec(None, tf.float32)  # unknown rank
    """)

_RUN_ONE = textwrap.dedent("""
    def run_case(code):
        try:
            exec(code, {"tf": tf, "tf_qdq": tf_qdq, "np": np, "R": R, "U": U,
                        "os": os})
        except Exception as e:  # report, never re-raise
            print("EXCEPTION %s: %s" % (type(e).__name__, e))
        else:
            print("NO EXCEPTION")
        sys.stdout.flush()
    """)

_FORK_SERVER = _PRELUDE + _RUN_ONE + textwrap.dedent("""
    import json, signal, tempfile, time
    cases = json.loads(sys.stdin.read())
    tmp = tempfile.mkdtemp()
    results = {}
    for i, (name, code) in enumerate(cases):
        out, err = os.path.join(tmp, "%d.out" % i), os.path.join(tmp, "%d.err" % i)
        sys.stdout.flush(); sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
                os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
                run_case(code)
            finally:
                os._exit(0)
        deadline = time.time() + @TIMEOUT@
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rc = os.waitstatus_to_exitcode(status)
                break
            if time.time() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                rc = "timeout"
                break
            time.sleep(0.005)
        with open(out, errors="replace") as f:
            stdout = f.read()
        with open(err, errors="replace") as f:
            stderr = f.read()[-3000:]
        results[name] = {"rc": rc, "stdout": stdout, "stderr": stderr}
    print("@@RESULTS@@" + json.dumps(results))
    """).replace("@TIMEOUT@", str(CASE_TIMEOUT_S))

_SINGLE = _PRELUDE + _RUN_ONE + "run_case(sys.stdin.read())\n"


def fresh_interpreter(code):
  proc = subprocess.run([sys.executable, "-c", _SINGLE], input=code,
                        capture_output=True, text=True,
                        timeout=CASE_TIMEOUT_S * 2)
  return {"rc": proc.returncode, "stdout": proc.stdout,
          "stderr": proc.stderr[-3000:]}


def run_in_forked_children(cases):
  """{name: {rc, stdout, stderr}} for [(name, code)], each case in a forked
  child of one helper process (also used by test_fuzz.py)."""
  proc = subprocess.run([sys.executable, "-c", _FORK_SERVER],
                        input=json.dumps(cases), capture_output=True, text=True,
                        timeout=CASE_TIMEOUT_S * len(cases) + 120)
  marker = "@@RESULTS@@"
  lines = [l for l in proc.stdout.splitlines() if l.startswith(marker)]
  assert proc.returncode == 0 and lines, (
      f"fork server failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
  return json.loads(lines[-1][len(marker):])
