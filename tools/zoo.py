"""The keras.applications zoo through tf_qdq.keras: for each family's smallest
member, whether quantize_model takes it, whether it exports fully int8, and
how close LiteRT and onnxruntime come to the QAT Keras model.

    python tools/zoo.py                      # every family (make zoo)
    python tools/zoo.py --models ResNet50,MobileNetV2 --quick
    python tools/zoo.py --report             # docs/zoo.md from docs/zoo.json

Per family (its own subprocess, so that a crash or a hang costs one row):
  1. the model with weights=None, classes=10 and its default preprocessing
     layers (EfficientNet's, MobileNetV3's, ConvNeXt's Rescaling and
     Normalization ship inside the model), at the smallest input size it
     accepts; its family's preprocess_input applied outside, as users do;
  2. fitted briefly on a synthetic, learnable 10-class task (a blob of one
     of ten colours on a noisy grey ground), so that argmax means something;
  3. qk.quantize_model, then QAT fit for an epoch;
  4. qk.export to .tflite (no allow_float_ops: a refusal is a result) and
     to .onnx;
  5. LiteRT with XNNPACK and with the reference kernels, onnxruntime at its
     default optimizations and with ORT_DISABLE_ALL, each against the QAT
     model in inference on held-out images, in output steps.

The bar (docs/zoo.md says it again): a runtime's mean |diff| is within
max(1 step, 1.1 x the noise floor) and its argmax agreement on clear-margin
samples is at least the noise floor's agreement less 2 points. The noise
floor is LiteRT against itself (XNNPACK vs its reference kernels on the same
file): how much this network amplifies two int8 kernels' one-step roundings.
Results go to docs/zoo.json (one entry per family, replaced when it runs
again) and the table to docs/zoo.md, beside tfmot's (docs/zoo_tfmot.json,
tools/zoo_tfmot.py) where that file exists.
"""
import argparse
import collections
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
JSON_PATH = os.path.join(DOCS, "zoo.json")
MD_PATH = os.path.join(DOCS, "zoo.md")
TFMOT_JSON_PATH = os.path.join(DOCS, "zoo_tfmot.json")

# family: (keras.applications module with its preprocess_input, smallest
# input size the constructor accepts).
FAMILIES = {
    "ConvNeXtTiny": ("convnext", 32),
    "DenseNet121": ("densenet", 32),
    "EfficientNetB0": ("efficientnet", 32),
    "EfficientNetV2B0": ("efficientnet_v2", 32),
    "InceptionResNetV2": ("inception_resnet_v2", 75),
    "InceptionV3": ("inception_v3", 75),
    "MobileNet": ("mobilenet", 32),
    "MobileNetV2": ("mobilenet_v2", 32),
    "MobileNetV3Small": ("mobilenet_v3", 32),
    "MobileNetV3Large": ("mobilenet_v3", 32),
    "NASNetMobile": ("nasnet", 32),
    "ResNet50": ("resnet", 32),
    "ResNet50V2": ("resnet_v2", 32),
    "VGG16": ("vgg16", 32),
    "Xception": ("xception", 71),
}
CLASSES = 10
SEED = 0
# (training images, float epochs, QAT epochs, held-out images)
BUDGET = {"full": (1024, 3, 1, 200), "quick": (256, 3, 1, 200)}
# Ten well-separated colours, one per class.
PALETTE = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
    [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
    [250, 250, 250], [10, 10, 10]], np.float64)
MEAN_SLACK, ARGMAX_SLACK = 1.1, 0.02


def images(n, size, seed):
  """n images (0..255, float32) of a disc of the class's colour at a random
  place and radius on a grey ground of random level with per-pixel noise,
  and their labels."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, CLASSES, n)
  yy, xx = np.mgrid[0:size, 0:size]
  ground = (rng.uniform(60, 190, (n, 1, 1, 1))
            + rng.normal(0, 12, (n, size, size, 3)))
  cy, cx = rng.uniform(0.35, 0.65, (2, n, 1, 1)) * size
  radius = rng.uniform(0.3, 0.45, (n, 1, 1)) * size
  disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
  colour = PALETTE[labels] + rng.normal(0, 10, (n, 3))
  x = np.where(disc[..., None], colour[:, None, None, :], ground)
  return np.clip(x, 0, 255).astype(np.float32), labels


def build(family, size, **model_kwargs):
  """The family's model (weights=None, classes=10, default preprocessing
  layers) and its preprocess_input."""
  import keras  # pylint: disable=import-outside-toplevel
  module, smallest = FAMILIES[family]
  size = max(int(size or smallest), smallest)
  model = getattr(keras.applications, family)(
      weights=None, classes=CLASSES, input_shape=(size, size, 3),
      **model_kwargs)
  preprocess = getattr(keras.applications, module).preprocess_input
  return model, (lambda x: np.asarray(preprocess(np.array(x)), np.float32))


def output_step(qat):
  """The output grid step of the QAT model (its last quantizer's scale), as
  tests/keras/_qat_models.py reads it."""
  import tf_qdq.keras as qk  # pylint: disable=import-outside-toplevel
  last = qat.layers[-1]
  quantizer = (last.output_quantizer if isinstance(last, qk.QuantizedLayer)
               else last)
  mn, mx = (float(v) for v in quantizer.range())
  return (mx - mn) / (2 ** quantizer.num_bits - 1)


def compare(reference, outputs, step, clear):
  """Mean and max |diff| in output steps, and argmax agreement on the
  `clear` (clear-margin) samples."""
  reference = np.asarray(reference, np.float64)
  outputs = np.asarray(outputs, np.float64)
  diff = np.abs(outputs - reference) / step
  same = reference.argmax(1) == outputs.argmax(1)
  return {"mean": float(diff.mean()), "max": float(diff.max()),
          "argmax": float(same[clear].mean()) if clear.any() else 1.0}


def within_bar(metrics, noise):
  """The project's bar against a noise floor (metrics of the same kind)."""
  floor_mean = noise["mean"] if noise else 0.0
  floor_argmax = noise["argmax"] if noise else 1.0
  return (metrics["mean"] <= max(1.0, MEAN_SLACK * floor_mean) + 1e-9
          and metrics["argmax"] >= floor_argmax - ARGMAX_SLACK - 1e-9)


def _error(e):
  return f"{type(e).__name__}: {e}".strip()


def environment():
  """Date, CPU and versions, for the table's header."""
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tf_qdq  # pylint: disable=import-outside-toplevel
  return {"date": datetime.date.today().isoformat(), "cpu": cpu_model(),
          "cores": os.cpu_count(), "tensorflow": tf.__version__,
          "keras": keras.__version__, "tf_qdq": tf_qdq.__version__}


def cpu_model():
  try:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return "unknown CPU"


def recalibrate_batch_norm(model, x):
  """Sets every BatchNormalization's moving statistics to those of `x` (one
  training-mode pass with momentum 0): a briefly fitted model's moving
  averages are still near their initial values, and its inference outputs
  near constant, with no argmax to compare."""
  import keras  # pylint: disable=import-outside-toplevel
  norms = [l for l in model._flatten_layers()  # pylint: disable=protected-access
           if isinstance(l, keras.layers.BatchNormalization)]
  momenta = [l.momentum for l in norms]
  for l in norms:
    l.momentum = 0.0
  model(x, training=True)
  for l, momentum in zip(norms, momenta):
    l.momentum = momentum


def run_family(family, size=None, quick=False, workdir=None, seed=SEED,
               model_kwargs=None):
  """One family through quantize_model, QAT, both exports and the runtimes;
  a dict of what happened (see docs/zoo.md). Exceptions of each stage are
  recorded, not raised."""
  import keras  # pylint: disable=import-outside-toplevel
  import tf_qdq.keras as qk  # pylint: disable=import-outside-toplevel
  from tf_qdq.keras.export import litert_float_ops  # pylint: disable=import-outside-toplevel
  from tf_qdq.keras.export import ort_runner  # pylint: disable=import-outside-toplevel
  model_kwargs = dict(model_kwargs or {})
  n_train, float_epochs, qat_epochs, n_test = BUDGET[
      "quick" if quick else "full"]
  record = {"family": family, "model_kwargs": model_kwargs, "quick": quick,
            **environment(), "seconds": {}}
  seconds = record["seconds"]
  workdir = workdir or tempfile.mkdtemp(prefix=f"zoo_{family}_")
  clock = [time.perf_counter()]

  def lap(name):
    now = time.perf_counter()
    seconds[name] = round(now - clock[0], 1)
    clock[0] = now
    # In the log, so that a crashed family's tail says how far it got.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"zoo: {family}: {name} done ({seconds[name]} s, peak {peak} MB)",
          flush=True)

  keras.utils.set_random_seed(seed)
  model, preprocess = build(family, size, **model_kwargs)
  size = int(model.inputs[0].shape[1])
  record.update(input_size=size, params=int(model.count_params()))
  x_train, y_train = images(n_train, size, seed)
  x_test, y_test = images(n_test, size, seed + 1)
  x_train, x_test = preprocess(x_train), preprocess(x_test)
  loss = keras.losses.SparseCategoricalCrossentropy()
  model.compile(keras.optimizers.Adam(3e-3), loss)
  model.fit(x_train, y_train, epochs=float_epochs, batch_size=32, verbose=0)
  recalibrate_batch_norm(model, x_train[:128])
  float_out = model.predict(x_test, batch_size=32, verbose=0)
  record["float_accuracy"] = float(np.mean(float_out.argmax(1) == y_test))
  lap("float_fit")

  try:
    qat = qk.quantize_model(model, verbose=False)
  except Exception as e:  # pylint: disable=broad-except
    record["quantize"] = {"ok": False, "error": _error(e),
                          "traceback": traceback.format_exc()[-3000:]}
    record["verdict"] = "quantize fails"
    return record
  record["quantize"] = {
      "ok": True,
      "unquantized_layers": list(getattr(qat, "unquantized_layers", [])),
      "warnings": [list(w) for w in getattr(qat, "quantization_warnings",
                                            [])]}
  lap("quantize")
  qat.compile(keras.optimizers.Adam(1e-4), loss)
  qat.fit(x_train, y_train, epochs=qat_epochs, batch_size=32, verbose=0)
  reference = qat.predict(x_test, batch_size=32, verbose=0)
  record["qat_accuracy"] = float(np.mean(reference.argmax(1) == y_test))
  step = output_step(qat)
  top2 = np.sort(reference, axis=1)[:, -2:]
  clear = (top2[:, 1] - top2[:, 0]) > 2 * step
  record.update(step=step, clear_samples=int(clear.sum()),
                held_out=int(n_test))
  lap("qat_fit")

  noise = None
  litert = record["litert"] = {"ok": False}
  tflite = os.path.join(workdir, f"{family}.tflite")
  try:
    qk.export(qat, tflite, verbose=False)
    with open(tflite, "rb") as f:
      flatbuffer = f.read()
    litert.update(ok=True, size_bytes=len(flatbuffer),
                  float_ops=[op for op, _ in litert_float_ops(flatbuffer)])
  except Exception as e:  # pylint: disable=broad-except
    litert["error"] = _error(e)
  lap("export_litert")
  if litert["ok"]:
    try:
      xnnpack = qk.run_litert(tflite, x_test)
      kernels = qk.run_litert(tflite, x_test, reference_kernels=True)
      noise = compare(kernels, xnnpack, step, clear)
      litert.update(xnnpack=compare(reference, xnnpack, step, clear),
                    reference=compare(reference, kernels, step, clear),
                    noise=noise)
      litert["within_bar"] = (within_bar(litert["xnnpack"], noise)
                              and within_bar(litert["reference"], noise))
    except Exception as e:  # pylint: disable=broad-except
      litert.update(ok=False, error="running: " + _error(e))
    lap("run_litert")

  onnx = record["onnx"] = {"ok": False}
  onnx_path = os.path.join(workdir, f"{family}.onnx")
  try:
    qk.export(qat, onnx_path, format="onnx", verbose=False)
    onnx.update(ok=True, size_bytes=os.path.getsize(onnx_path))
  except Exception as e:  # pylint: disable=broad-except
    onnx["error"] = _error(e)
  lap("export_onnx")
  if onnx["ok"]:
    try:
      ort = ort_runner.run_both_levels(onnx_path, x_test)
      own = compare(ort["disable_all"], ort["default"], step, clear)
      # LiteRT's noise floor where there is one: ORT's default vs
      # disable_all would loosen the bar exactly where the integer kernels
      # go wrong.
      floor = noise or own
      onnx.update(default=compare(reference, ort["default"], step, clear),
                  disable_all=compare(reference, ort["disable_all"], step,
                                      clear),
                  own_noise=own, floor="litert" if noise else "onnxruntime")
      onnx["within_bar"] = (within_bar(onnx["default"], floor)
                            and within_bar(onnx["disable_all"], floor))
    except Exception as e:  # pylint: disable=broad-except
      onnx.update(ok=False, error="running: " + _error(e))
    lap("run_onnxruntime")
  record["verdict"] = verdict(record)
  return record


def verdict(record):
  """"pass", or what failed: quantize_model, an export, or a runtime off the
  bar."""
  if not record.get("quantize", {}).get("ok"):
    return "quantize fails"
  failed = []
  litert, onnx = record.get("litert", {}), record.get("onnx", {})
  if not litert.get("ok"):
    failed.append("LiteRT refuses float ops" if "run in float" in
                  litert.get("error", "") else "LiteRT fails")
  elif not litert.get("within_bar"):
    failed.append("LiteRT off bar")
  if not onnx.get("ok"):
    failed.append("ONNX fails")
  elif not onnx.get("within_bar"):
    failed.append("ORT off bar")
  return "; ".join(failed) or "pass"


def _child(args):
  """--one FAMILY: run it here and write its record to --result."""
  try:
    record = run_family(args.one, args.size, args.quick,
                        workdir=os.path.dirname(os.path.abspath(args.result)),
                        model_kwargs=json.loads(args.model_kwargs or "{}"))
  except Exception as e:  # pylint: disable=broad-except
    record = {"family": args.one, "verdict": "crashed", "error": _error(e),
              "traceback": traceback.format_exc()[-3000:]}
  with open(args.result, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=1)


def run_in_subprocess(family, size, quick, timeout):
  """run_family in a fresh Python process; a crash or a timeout is a
  record too."""
  with tempfile.TemporaryDirectory(prefix="zoo_") as tmp:
    result = os.path.join(tmp, "result.json")
    log = os.path.join(tmp, "log.txt")
    command = [sys.executable, os.path.abspath(__file__), "--one", family,
               "--result", result]
    if size:
      command += ["--size", str(size)]
    if quick:
      command.append("--quick")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
      try:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout, env=env, check=False)
        rc = done.returncode
      except subprocess.TimeoutExpired:
        rc = None
    elapsed = round(time.perf_counter() - start, 1)
    if rc == 0 and os.path.exists(result):
      with open(result, encoding="utf-8") as f:
        record = json.load(f)
    else:
      with open(log, encoding="utf-8", errors="replace") as f:
        tail = f.read()[-3000:]
      why = (f"timed out after {timeout} s" if rc is None else
             f"process died (exit {rc}{', killed' if rc == -9 else ''})")
      stages = re.findall(r"zoo: \S+: (\S+) done \(([^)]*)\)", tail)
      if stages:
        why += f" after {stages[-1][0]} ({stages[-1][1]})"
      record = {"family": family, "verdict": "crashed", "error": why,
                "log_tail": tail, **environment()}
    record["wall_seconds"] = elapsed
    return record


def load(path):
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  return None


def save_record(record, path=JSON_PATH):
  """Replaces the family's entry in docs/zoo.json (others are kept)."""
  data = load(path) or {"results": {}}
  data["results"][record["family"]] = record
  data["results"] = dict(sorted(data["results"].items()))
  with open(path, "w", encoding="utf-8") as f:
    json.dump(data, f, indent=1)
    f.write("\n")


def _steps(metrics):
  return f"{metrics['mean']:.2f} / {metrics['max']:.1f}"


def _short(message, limit=240):
  message = " ".join(str(message).split())
  return message if len(message) <= limit else message[:limit - 3] + "..."


def _float_ops_summary(error):
  """The exporter's refusal as the op types it names and how often, or the
  error shortened."""
  ops = re.findall(r"\b([A-Z][A-Z0-9_]+) -> ", error)
  if "run in float" not in error or not ops:
    return _short(error)
  counts = collections.Counter(ops)
  return (f"export refuses {len(ops)} float ops: " +
          ", ".join(f"{op} x{n}" for op, n in counts.most_common()))


def _tfmot_cell(entry):
  if entry is None:
    return "-"
  if not entry.get("quantize", {}).get("ok"):
    return "quantize fails"
  if not entry.get("convert", {}).get("ok"):
    return "convert fails"
  floating = entry["convert"].get("float_ops") or []
  if floating:
    return f"float ops ({', '.join(sorted(set(floating)))})"
  return "int8"


def _row(family, record, tfmot):
  """One table row and the failures to list under the table."""
  notes = []
  quantize = record.get("quantize", {})
  litert, onnx = record.get("litert", {}), record.get("onnx", {})
  size = record.get("input_size", FAMILIES[family][1])
  quick = ", quick" if record.get("quick") else ""
  cells = [f"{family} ({size}{quick})"]
  if record.get("verdict") == "-":
    cells += ["not run"] + ["-"] * 6
  elif record.get("verdict") == "crashed":
    notes.append(f"{family}: {record.get('error')}")
    cells += ["crashed"] + ["-"] * 6
  elif not quantize.get("ok"):
    notes.append(f"{family}: quantize_model: {_short(quantize.get('error'))}")
    cells += ["no"] + ["-"] * 6
  else:
    cells.append("yes")
    kilobytes = "-"
    if litert.get("ok"):
      cells.append("no" if litert.get("float_ops") else "yes")
      if "xnnpack" in litert:
        cells += [_steps(litert["xnnpack"]), _steps(litert["noise"]),
                  f"{litert['xnnpack']['argmax']:.0%} / "
                  f"{litert['reference']['argmax']:.0%} / "
                  f"{litert['noise']['argmax']:.0%}"]
      else:
        cells += ["-"] * 3
      kilobytes = f"{litert['size_bytes'] / 1024:.0f}"
    else:
      error = litert.get("error", "")
      notes.append(f"{family}: LiteRT: {_float_ops_summary(error)}")
      cells += ["no" if "run in float" in error else "-"] + ["-"] * 3
    if onnx.get("ok") and "default" in onnx:
      mark = "" if onnx.get("within_bar") else " ✗"
      cells.append(f"{onnx['default']['mean']:.2f} / "
                   f"{onnx['disable_all']['mean']:.2f}{mark}")
    else:
      notes.append(f"{family}: ONNX: {_short(onnx.get('error', ''))}")
      cells.append("fails")
    cells.append(kilobytes)
  cells.append(record.get("verdict", "-"))
  cells.append(_tfmot_cell(tfmot))
  return cells, notes


def write_markdown(data, tfmot, path=MD_PATH):
  results = (data or {}).get("results", {})
  tfmot_results = (tfmot or {}).get("results", {})
  first = next(iter(results.values()), {})
  # Families run on different machines (a run replaces only its families'
  # rows): each row names its machine and date by a mark.
  machines = sorted({(r.get("cpu", "?"), r.get("cores", "?"),
                      r.get("date", "-")) for r in results.values()
                     if "cpu" in r}, key=lambda m: m[2])
  marks = {m: "¹²³⁴⁵⁶⁷⁸⁹"[i] if len(machines) > 1 else ""
           for i, m in enumerate(machines[:9])}
  where = "; ".join(f"{marks[m]}{m[0]} ({m[1]} cores), {m[2]}"
                    for m in machines) or cpu_model()
  lines = [
      "# The keras.applications zoo", "",
      f"Generated by `tools/zoo.py` (`make zoo`) on {where}"
      f"; TensorFlow {first.get('tensorflow', '?')}, Keras "
      f"{first.get('keras', '?')}, tf_qdq {first.get('tf_qdq', '?')}. "
      "tfmot: tensorflow-model-optimization "
      f"{(tfmot or {}).get('tfmot', '0.8.1')} on tf_keras "
      f"{(tfmot or {}).get('tf_keras', '?')} "
      "(`tools/zoo_tfmot.py`, its own venv).", "",
      "| family (input) | quantizes | fully int8 | LiteRT mean / max steps "
      "| noise mean / max | argmax XNNPACK / ref / noise | ORT mean steps "
      "(default / disable_all) | KB | verdict | tfmot 0.8.1 |",
      "|---|---|---|---|---|---|---|---|---|---|"]
  notes = []
  for family in FAMILIES:
    if family not in results and family not in tfmot_results:
      continue
    record = results.get(family, {"verdict": "-"})
    cells, row_notes = _row(family, record, tfmot_results.get(family))
    cells[0] += marks.get((record.get("cpu", "?"), record.get("cores", "?"),
                           record.get("date", "-")), "")
    lines.append("| " + " | ".join(cells) + " |")
    notes += row_notes
  for family, entry in sorted(tfmot_results.items()):
    for stage in ("quantize", "convert"):
      if not entry.get(stage, {}).get("ok", True):
        notes.append(f"tfmot {family}: {stage}: "
                     f"{_short(entry[stage].get('error', ''))}")
        break
  quick = any(r.get("quick") for r in results.values())
  lines += ["", MEASURED.format(
      budget=BUDGET["quick" if quick else "full"],
      quick=" (`--quick`)" if quick else "")]
  if notes:
    lines += ["", "Failures, shortened (docs/zoo.json and "
              "docs/zoo_tfmot.json have them whole):", ""]
    lines += [f"- {_short(n, 400)}" for n in notes]
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")


MEASURED = """\
How it was measured. Each family's smallest member is built with
`weights=None, classes=10` at the smallest input its constructor accepts,
with its default preprocessing layers (those inside the model ship in the
file) and its family's `preprocess_input` applied outside the model. It is
fitted on a synthetic 10-class task (a disc of one of ten colours on a noisy
grey ground; {budget[0]} images, {budget[1]} float epochs, the
BatchNormalization statistics then set from 128 of them, since so brief a
fit leaves the moving averages near their start), then `qk.quantize_model`
and {budget[2]} QAT epoch{quick}, exported with
`qk.export` to .tflite (no `allow_float_ops`: "fully int8" is the exporter's
own check, and a refusal is listed below) and to .onnx, and run on
{budget[3]} held-out images: LiteRT with XNNPACK and with its reference
kernels, onnxruntime (in process, this CPU) at its default optimizations and
with ORT_DISABLE_ALL. Each is compared with the QAT Keras model in inference,
in steps of the output quantizer's grid (1/256 for the softmax). The noise
floor is LiteRT against itself (XNNPACK vs reference kernels on the same
file), how far this network amplifies two int8 kernels' one-step roundings.
Argmax agreement counts the samples whose QAT top-2 margin exceeds 2 steps.
Verdict "pass": LiteRT (both kernel sets) and onnxruntime (both levels) have
a mean |diff| within max(1 step, 1.1 x the noise floor's mean) and an argmax
agreement at least the noise floor's less 2 points (✗ marks an ORT cell off
that bar). tfmot's column: `tfmot.quantization.keras.quantize_model` on the
same family from `tf_keras.applications` (untrained: whether it quantizes
and converts does not depend on the weights), then TFLiteConverter with
`optimizations=[DEFAULT]`: "int8" where every op but the input QUANTIZE and
output DEQUANTIZE is integer.

`make test` runs four of these families (MobileNet, MobileNetV2,
MobileNetV3Small, EfficientNetB0) through the same steps at the `--quick`
budget and holds each to the same bar (tests/keras/test_zoo.py)."""


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", help="comma-separated families (default: "
                      "all of " + ", ".join(FAMILIES) + ")")
  parser.add_argument("--size", type=int, help="input size (default: the "
                      "smallest each family accepts; never below it)")
  parser.add_argument("--quick", action="store_true",
                      help="fewer images and steps: " + str(BUDGET["quick"]))
  parser.add_argument("--timeout", type=int, default=900,
                      help="seconds per family (default 900)")
  parser.add_argument("--report", action="store_true",
                      help="only write docs/zoo.md from docs/zoo.json")
  parser.add_argument("--one", help=argparse.SUPPRESS)
  parser.add_argument("--result", help=argparse.SUPPRESS)
  parser.add_argument("--model-kwargs", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.one:
    _child(args)
    return 0
  if not args.report:
    families = (args.models.split(",") if args.models else list(FAMILIES))
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
      parser.error(f"unknown families {unknown}; known: {list(FAMILIES)}")
    for family in families:
      print(f"zoo: {family} ...", flush=True)
      record = run_in_subprocess(family, args.size, args.quick,
                                 args.timeout)
      save_record(record)
      print(f"zoo: {family}: {record.get('verdict')} "
            f"({record.get('wall_seconds')} s)", flush=True)
  write_markdown(load(JSON_PATH), load(TFMOT_JSON_PATH))
  print(f"zoo: wrote {MD_PATH}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
