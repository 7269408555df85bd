"""tools/zoo.py's families through tensorflow-model-optimization (tfmot)
0.8.1, the baseline beside docs/zoo.md: for each, whether
tfmot.quantization.keras.quantize_model takes the tf_keras.applications
model, whether TFLiteConverter (optimizations=[DEFAULT]) converts the QAT
model, and whether the result is fully int8 (no float op besides the input
QUANTIZE and output DEQUANTIZE). Writes docs/zoo_tfmot.json.

tfmot runs on Keras 2 only, so this runs in its own venv, never the
project's .venv:
    python3 -m venv .venv-tfmot
    .venv-tfmot/bin/pip install -r tools/zoo_tfmot_requirements.txt
    .venv-tfmot/bin/python tools/zoo_tfmot.py [--models A,B] [--size N]
(`make zoo` runs it first where .venv-tfmot exists.) Each family runs in its
own subprocess, as in tools/zoo.py.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before TensorFlow is imported
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=wrong-import-position
import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

from zoo import CLASSES, FAMILIES, cpu_model

JSON_PATH = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "docs", "zoo_tfmot.json")


def _error(e):
  return f"{type(e).__name__}: {e}".strip()


def versions():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel
  import tf_keras  # pylint: disable=import-outside-toplevel
  return {"date": datetime.date.today().isoformat(), "cpu": cpu_model(),
          "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
          "tfmot": tfmot.__version__}


def float_ops(flatbuffer):
  """The ops of a .tflite model with a float input, other than QUANTIZE
  and DEQUANTIZE (the float model boundary): [(op, its first output's
  name)], and how many ops it has."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  interp = tf.lite.Interpreter(model_content=flatbuffer)
  details = {d["index"]: d for d in interp.get_tensor_details()}
  ops = interp._get_ops_details()  # pylint: disable=protected-access
  return ([(op["op_name"], details[op["outputs"][0]]["name"]) for op in ops
           if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE")
           and any(np.issubdtype(details[i]["dtype"], np.floating)
                   for i in op["inputs"] if i >= 0)],
          len(ops))


def run_family(family, size=None):
  """One family: quantize_model, then the converter; a dict of what
  happened, exceptions recorded."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel
  import tf_keras  # pylint: disable=import-outside-toplevel
  tf_keras.utils.set_random_seed(0)
  smallest = FAMILIES[family][1]
  size = max(int(size or smallest), smallest)
  record = {"family": family, "input_size": size, **versions(),
            "seconds": {}}
  start = time.perf_counter()
  model = getattr(tf_keras.applications, family)(
      weights=None, classes=CLASSES, input_shape=(size, size, 3))
  try:
    qat = tfmot.quantization.keras.quantize_model(model)
  except Exception as e:  # pylint: disable=broad-except
    record["quantize"] = {"ok": False, "error": _error(e),
                          "traceback": traceback.format_exc()[-3000:]}
    return record
  record["quantize"] = {"ok": True}
  record["seconds"]["quantize"] = round(time.perf_counter() - start, 1)
  start = time.perf_counter()
  try:
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3))
    qat(x.astype(np.float32), training=False)
    converter = tf.lite.TFLiteConverter.from_keras_model(qat)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flatbuffer = converter.convert()
  except Exception as e:  # pylint: disable=broad-except
    record["convert"] = {"ok": False, "error": _error(e),
                         "traceback": traceback.format_exc()[-3000:]}
    return record
  floating, count = float_ops(flatbuffer)
  record["convert"] = {"ok": True, "size_bytes": len(flatbuffer),
                       "ops": count,
                       "float_ops": [op for op, _ in floating],
                       "float_op_outputs": [name for _, name in floating],
                       "fully_int8": not floating}
  record["seconds"]["convert"] = round(time.perf_counter() - start, 1)
  return record


def run_in_subprocess(family, size, timeout):
  with tempfile.TemporaryDirectory(prefix="zoo_tfmot_") as tmp:
    result = os.path.join(tmp, "result.json")
    command = [sys.executable, os.path.abspath(__file__), "--one", family,
               "--result", result] + (["--size", str(size)] if size else [])
    try:
      done = subprocess.run(command, capture_output=True, text=True,
                            timeout=timeout, check=False)
      rc, tail = done.returncode, (done.stdout + done.stderr)[-3000:]
    except subprocess.TimeoutExpired:
      rc, tail = None, ""
    if rc == 0 and os.path.exists(result):
      with open(result, encoding="utf-8") as f:
        return json.load(f)
    why = (f"timed out after {timeout} s" if rc is None else
           f"process died (exit {rc})")
    return {"family": family, "quantize": {"ok": False, "error": why},
            "log_tail": tail}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", help="comma-separated families (default: "
                      "all)")
  parser.add_argument("--size", type=int, help="input size (default: the "
                      "smallest each family accepts)")
  parser.add_argument("--timeout", type=int, default=900)
  parser.add_argument("--one", help=argparse.SUPPRESS)
  parser.add_argument("--result", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.one:
    try:
      record = run_family(args.one, args.size)
    except Exception as e:  # pylint: disable=broad-except
      record = {"family": args.one, "quantize": {"ok": False,
                                                 "error": _error(e)}}
    with open(args.result, "w", encoding="utf-8") as f:
      json.dump(record, f, indent=1)
    return 0
  families = args.models.split(",") if args.models else list(FAMILIES)
  unknown = [f for f in families if f not in FAMILIES]
  if unknown:
    parser.error(f"unknown families {unknown}; known: {list(FAMILIES)}")
  data = {"results": {}}
  if os.path.exists(JSON_PATH):
    with open(JSON_PATH, encoding="utf-8") as f:
      data = json.load(f)
  data.update(versions())
  for family in families:
    record = run_in_subprocess(family, args.size, args.timeout)
    data["results"][family] = record
    data["results"] = dict(sorted(data["results"].items()))
    with open(JSON_PATH, "w", encoding="utf-8") as f:
      json.dump(data, f, indent=1)
      f.write("\n")
    convert = record.get("convert", {})
    state = ("quantize fails" if not record["quantize"]["ok"] else
             "convert fails" if not convert.get("ok") else
             "int8" if convert["fully_int8"] else
             f"float ops {sorted(set(convert['float_ops']))}")
    print(f"zoo_tfmot: {family}: {state}", flush=True)
  print(f"zoo_tfmot: wrote {JSON_PATH}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
