"""How the bench scripts time things, and on what machine.

One implementation for run_benchmarks.py, qat_step.py and onnx_weights.py:
contenders called interleaved in rounds in one process, their samples'
statistics, and the machine record (CPU, the ISA tf_qdq runs, versions,
load). Why it measures this way: docs/performance.md, "How we measure".

TensorFlow and tf_qdq are imported only inside the functions that need them:
qat_step.py's tfmot worker imports this module in a virtualenv that has
TensorFlow but not tf_qdq.
"""
import datetime
import gc
import os
import platform
import re
import statistics
import time

# The CPU flags the machine record lists (the ones tf_qdq's and TF's kernels
# dispatch on).
SIMD_FLAGS = ("avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
              "avx512_fp16", "avx2", "f16c")
# What tf_qdq's AVX-512 clones need (cc/core/cpu/blocks.h).
WIDE_FLAGS = ("avx2", "avx512f", "avx512vl", "avx512dq")


def in_mode(fn, mode):
  """`fn` as it runs in `mode`: "graph", a tf.function (as Keras trains, so
  TF's allocator hands the output buffers back call after call), or
  "eager", the plain call.

  The tf.function takes no arguments: the tensors `fn` holds (a closure or
  a functools.partial) are captured when it is traced, so a call pays no
  per-argument dispatch."""
  if mode == "eager":
    return fn
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  # A lambda, not `fn` itself: a partial's tensors would become arguments.
  return tf.function(lambda: fn(), autograph=False)  # noqa: PLW0108


def time_interleaved(fns, min_rounds, max_rounds=None, target_s=0.0,
                     warmup=1, calls=1, order="rotate"):
  """Seconds per call of each of `fns` (name -> callable), interleaved.

  After `warmup` calls of each, every round times `calls` back-to-back calls
  of each contender in turn, in an order that changes per round: "rotate"
  (A B C, B C A, ...) or "reverse" (A B C, C B A, ...). Rounds run until
  `min_rounds` are done and `target_s` has passed, or `max_rounds` (default:
  `min_rounds`). Python's GC is off while timing, and each contender's output
  is dropped outside its timed region. Returns name -> list of seconds, one
  sample per round, so the i-th samples of two contenders share a round.
  """
  names = list(fns)
  max_rounds = min_rounds if max_rounds is None else max_rounds
  for name in names:
    for _ in range(warmup):
      fns[name]()
  samples = {n: [] for n in names}
  gc.collect()
  gc_was_enabled = gc.isenabled()
  gc.disable()
  perf = time.perf_counter
  try:
    start = perf()
    rounds = 0
    while rounds < max_rounds:
      if order == "rotate":
        k = rounds % len(names)
        ordered = names[k:] + names[:k]
      else:
        ordered = names if rounds % 2 == 0 else names[::-1]
      for name in ordered:
        f = fns[name]
        t0 = perf()
        for _ in range(calls):
          keep = f()
        t1 = perf()
        samples[name].append((t1 - t0) / calls)
        keep = None  # noqa: F841  (freed outside the timed region)
      rounds += 1
      if rounds >= min_rounds and perf() - start >= target_s:
        break
  finally:
    if gc_was_enabled:
      gc.enable()
  return samples


def quartiles(values):
  """(first quartile, median, third quartile), interpolated linearly
  between the sorted values (NumPy's default)."""
  values = sorted(values)
  if len(values) == 1:
    return values[0], values[0], values[0]
  q = statistics.quantiles(values, n=4, method="inclusive")
  return q[0], statistics.median(values), q[2]


def summarize(ts):
  """The statistics of one contender's samples (seconds)."""
  p25, median, p75 = quartiles(ts)
  return {"median_s": float(median), "min_s": float(min(ts)),
          "p25_s": float(p25), "p75_s": float(p75), "n": len(ts)}


# ---- machine -----------------------------------------------------------------


def loadavg():
  """The 1, 5 and 15 minute load averages, or None."""
  try:
    return [round(v, 2) for v in os.getloadavg()]
  except OSError:
    return None


def utc_stamp():
  return datetime.datetime.now(datetime.timezone.utc).strftime(
      "%Y-%m-%d %H:%M UTC")


def _cpuinfo():
  """(model name, set of flags) from /proc/cpuinfo."""
  model, flags = platform.processor() or "unknown CPU", set()
  try:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
      text = f.read()
  except OSError:
    return model, flags
  m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
  if m:
    model = m.group(1).strip()
  m = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
  if m:
    flags = set(m.group(1).split())
  return model, flags


def _memory():
  try:
    with open("/proc/meminfo", encoding="ascii") as f:
      m = re.search(r"MemTotal:\s*(\d+) kB", f.read())
  except OSError:
    return None
  return f"{int(m.group(1)) / 2**20:.1f} GiB" if m else None


def _isa(flags):
  """(short name, sentence) of the ISA tf_qdq's loops run on this CPU."""
  wide = all(f in flags for f in WIDE_FLAGS)
  if wide and "TF_QDQ_NO_AVX512" not in os.environ:  # set at all: AVX
    return "AVX-512", ("AVX-512 (tf_qdq's per-channel FakeQuant loops run "
                       "their AVX-512 clones; the other loops are AVX code)")
  short = "AVX2" if "avx2" in flags else "AVX"
  sentence = (short + " (no AVX-512 path: "
              + ("TF_QDQ_NO_AVX512 is set" if wide else
                 "the CPU has no AVX-512")
              + "; every loop runs the build's AVX code)")
  return short + (" (TF_QDQ_NO_AVX512)" if wide else ""), sentence


def machine_info():
  """The record every bench output carries: CPU, ISA, versions, threads."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tf_qdq  # pylint: disable=import-outside-toplevel
  model, flags = _cpuinfo()
  try:
    ncpu = len(os.sched_getaffinity(0))
  except AttributeError:
    ncpu = os.cpu_count()
  isa_short, isa = _isa(flags)
  threading = tf.config.threading
  return {
      "cpu": model, "nproc": ncpu,
      "simd": [f for f in SIMD_FLAGS if f in flags],
      "isa": isa, "isa_short": isa_short, "memory": _memory(),
      "python": platform.python_version(), "numpy": np.__version__,
      "tensorflow": tf.__version__,
      "tf_qdq": getattr(tf_qdq, "__version__", "?"),
      "tf_qdq_path": os.path.dirname(os.path.abspath(tf_qdq.__file__)),
      "intra_op_threads": threading.get_intra_op_parallelism_threads(),
      "inter_op_threads": threading.get_inter_op_parallelism_threads(),
      "date": utc_stamp(),
      "loadavg_start": loadavg(),
  }


def isa_short(machine):
  """"AVX-512", "AVX2", ...; for records written before machine_info kept
  it, read from the CPU flags they list."""
  if machine.get("isa_short"):
    return machine["isa_short"]
  simd = machine.get("simd", ())
  return ("AVX-512" if "avx512f" in simd else
          "AVX2" if "avx2" in simd else "AVX")


def machine_label(machine):
  """What a machine's tables are labelled and keyed by: CPU model and ISA."""
  return f"{machine['cpu']}, {isa_short(machine)}"


def machine_key(machine):
  return re.sub(r"[^a-z0-9]+", "-", machine_label(machine).lower()).strip("-")


def describe(machine):
  """Two lines for a script's start: the machine and the ISA tf_qdq runs."""
  return (f"{machine['cpu']}, {machine['nproc']} cores, TF "
          f"{machine['tensorflow']}, tf_qdq from {machine['tf_qdq_path']}\n"
          f"ISA: {machine['isa']}; CPU flags {' '.join(machine['simd'])}")
