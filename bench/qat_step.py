#!/usr/bin/env python3
"""What a QAT training step costs over a float one: tf_qdq.keras beside
tensorflow-model-optimization (tfmot), on the same architectures.

    python bench/qat_step.py [--rounds 40] [--out docs] [--skip-tfmot]
    python bench/qat_step.py --profile [NET ...] [--rounds 10]

For a ResNet-style and a MobileNetV2-style net with BatchNormalization
(32x32x3 inputs, batch 32, CPU), the float model and its QAT copy
(tf_qdq.keras.quantize_model, the int8 scheme) run `train_on_batch`
interleaved: each round times `STEPS` steps of one, then of the other, in
alternating order. The ratio QAT / float, the overhead a user pays, is the
median over rounds of the two samples' ratio within a round (robust to the
load of a shared machine, which drifts over seconds); the ratio of median
times and of the fastest samples are reported beside it.

tfmot needs the legacy tf_keras (TF_USE_LEGACY_KERAS=1), which cannot share
a process with Keras 3: the same measurement runs in a separate virtualenv
(build/tfmot-venv, made on first use with tensorflow, tf_keras and
tensorflow-model-optimization from the package index) on the same
architectures written for tf_keras, and its ratio is reported beside ours.
Ratios, not times, are compared across the two processes.

Writes <out>/qat_step.md and <out>/qat_step.json. Timing and the machine
record: _harness.py; why this way: docs/performance.md, "QAT training step".
"""
import argparse
import json
import os
import subprocess
import sys

import _harness as harness
from _marked import QAT_STEP_END, QAT_STEP_START, replace_marked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TFMOT_VENV = os.path.join(ROOT, "build", "tfmot-venv")
TFMOT_REQUIREMENTS = ["tensorflow==2.21.0", "tf_keras==2.21.0",
                      "tensorflow-model-optimization==0.8.1"]
BATCH = 32
STEPS = 2
TARGET = 1.15


def resnet_style(keras):
  layers = keras.layers
  x = keras.Input((32, 32, 3))
  y = layers.Conv2D(16, 3, padding="same", use_bias=False)(x)
  y = layers.BatchNormalization()(y)
  y = layers.ReLU()(y)
  for filters, stride in ((16, 1), (32, 2), (64, 2)):
    shortcut = y
    if stride != 1 or filters != 16:
      shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(y)
      shortcut = layers.BatchNormalization()(shortcut)
    h = layers.Conv2D(filters, 3, strides=stride, padding="same",
                      use_bias=False)(y)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    y = layers.ReLU()(layers.Add()([shortcut, h]))
  y = layers.GlobalAveragePooling2D()(y)
  return keras.Model(x, layers.Dense(10)(y), name="resnet_style")


def mobilenet_v2_style(keras):
  layers = keras.layers
  x = keras.Input((32, 32, 3))
  y = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)
  y = layers.BatchNormalization()(y)
  y = layers.ReLU(6.0)(y)
  for filters, stride in ((16, 1), (24, 2), (24, 1), (32, 2), (32, 1)):
    h = layers.Conv2D(y.shape[-1] * 4, 1, use_bias=False)(y)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU(6.0)(h)
    h = layers.DepthwiseConv2D(3, strides=stride, padding="same",
                               use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU(6.0)(h)
    h = layers.Conv2D(filters, 1, use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    y = layers.Add()([y, h]) if stride == 1 and y.shape[-1] == filters else h
  y = layers.GlobalAveragePooling2D()(y)
  return keras.Model(x, layers.Dense(10)(y), name="mobilenet_v2_style")


NETS = {"ResNet-style": resnet_style, "MobileNetV2-style": mobilenet_v2_style}


def _compile(keras, model):
  model.compile(keras.optimizers.SGD(0.01), keras.losses.
                SparseCategoricalCrossentropy(from_logits=True))


def _step_times(models, x, y, rounds):
  """Seconds per train_on_batch for each model, interleaved: per-round
  samples (each round times STEPS steps of every model, back to back, in
  alternating order; 3 warm-up steps trace each first). On a shared machine
  the load drifts over seconds; the ratio of two samples taken in the same
  round sees (nearly) the same load, so the median of the per-round ratios
  is the robust figure; medians and minima are kept too."""
  fns = {i: (lambda m=m: m.train_on_batch(x, y))
         for i, m in enumerate(models)}
  samples = harness.time_interleaved(fns, rounds, warmup=3, calls=STEPS,
                                     order="reverse")
  return [samples[i] for i in range(len(models))]


def measure(keras, quantize, rounds):
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  x = rng.normal(size=(BATCH, 32, 32, 3)).astype(np.float32)
  y = rng.integers(0, 10, size=BATCH)
  results = {}
  for name, build in NETS.items():
    keras.utils.set_random_seed(0)
    float_model = build(keras)
    qat = quantize(float_model)
    for model in (float_model, qat):
      _compile(keras, model)
    float_s, qat_s = _step_times([float_model, qat], x, y, rounds)
    low, paired, high = harness.quartiles(
        [q / f for q, f in zip(qat_s, float_s)])
    float_time = harness.summarize(float_s)["median_s"]
    qat_time = harness.summarize(qat_s)["median_s"]
    results[name] = {"float_ms": float_time * 1e3, "qat_ms": qat_time * 1e3,
                     "paired_ratio": paired,
                     "paired_ratio_quartiles": (low, high),
                     "ratio": qat_time / float_time,
                     "ratio_of_minima": min(qat_s) / min(float_s),
                     "rounds": rounds}
  return results


def measure_tf_qdq(rounds):
  import keras  # pylint: disable=import-outside-toplevel
  import tf_qdq.keras as qk  # pylint: disable=import-outside-toplevel
  return measure(keras, lambda m: qk.quantize_model(m, verbose=False), rounds)


def measure_tfmot(rounds):
  """In the tfmot venv (TF_USE_LEGACY_KERAS=1)."""
  import tf_keras  # pylint: disable=import-outside-toplevel
  import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel
  return measure(tf_keras, tfmot.quantization.keras.quantize_model, rounds)


def _tfmot_python():
  python = os.path.join(TFMOT_VENV, "bin", "python")
  if not os.path.exists(python):
    print(f"qat_step: making {TFMOT_VENV} (tfmot needs tf_keras)")
    subprocess.run([sys.executable, "-m", "venv", TFMOT_VENV], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q",
                    *TFMOT_REQUIREMENTS], check=True)
  return python


def run_tfmot_subprocess(rounds):
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH="")
  done = subprocess.run(
      [_tfmot_python(), os.path.abspath(__file__), "--tfmot-worker",
       "--rounds", str(rounds)], env=env, capture_output=True, text=True,
      check=False)
  if done.returncode != 0:
    raise RuntimeError("tfmot run failed:\n" + done.stderr[-4000:])
  return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio_cell(r):
  low, high = r["paired_ratio_quartiles"]
  return (f"**{r['paired_ratio']:.3f}** [{low:.3f}, {high:.3f}] | "
          f"{r['ratio']:.3f} | {r['ratio_of_minima']:.3f}")


def report(ours, theirs, out, load, machine):
  lines = [
      "# QAT training step: overhead over float",
      "",
      "Written by `bench/qat_step.py` (part of `make bench`). "
      f"`train_on_batch` time, batch {BATCH}, 32x32x3 inputs, CPU, float and "
      f"QAT interleaved: each round times {STEPS} steps of one, then of the "
      "other (alternating order). tf_qdq: `tf_qdq.keras.quantize_model` "
      "(int8 scheme); tfmot 0.8.1: `tfmot.quantization.keras.quantize_model` "
      "on the same architecture in tf_keras, run in its own process (ratios "
      "are comparable, times are of two processes).",
      "",
      "QAT / float is the median over rounds of the ratio of the two samples "
      "of one round (taken seconds apart, under nearly the same load), with "
      "its quartiles in brackets; beside it the ratio of the median times "
      "and the ratio of the fastest samples. The verdicts use the first. "
      f"Run {machine['date']} on {harness.machine_label(machine)}. Load "
      f"average (1 min) before and after the run: {load[0]:.2f}, "
      f"{load[1]:.2f} on {machine['nproc']} cores.",
      "",
      "What a tf_qdq QAT step runs beyond the float step (float32, CPU): "
      "per activation quantizer, one TfQdq>FakeQuantWithMovingAverage op "
      "(the batch's finite range, the moving-average update and the "
      "FakeQuant, with the ReLU/ReLU6 of a Conv/Dense applied inside it "
      "instead of as its own op) and its gradient, one pass that is also the "
      "ReLU's gradient, then three variable assignments. Per Conv/Dense, the "
      "BN-folded kernel's per-channel FakeQuant and its gradient and the "
      "per-channel folding arithmetic. `bench/qat_step.py --profile` prints "
      "the split per op type from the TF profiler's trace.",
      "",
      "| net | float step | QAT step | tf_qdq QAT / float [quartiles] | "
      "ratio of medians | of minima | tfmot float step | tfmot QAT step | "
      "tfmot QAT / float [quartiles] | ratio of medians | of minima | "
      f"<= {TARGET} | below tfmot |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|",
  ]
  for name in NETS:
    a, b = ours[name], theirs.get(name) if theirs else None
    tfmot_cells = "- | - | - | - | -" if b is None else (
        f"{b['float_ms']:.1f} ms | {b['qat_ms']:.1f} ms | {_ratio_cell(b)}")
    below = "-" if b is None else (
        "yes" if a["paired_ratio"] < b["paired_ratio"] else "NO")
    lines.append(
        f"| {name} | {a['float_ms']:.1f} ms | {a['qat_ms']:.1f} ms | "
        f"{_ratio_cell(a)} | {tfmot_cells} | "
        f"{'yes' if a['paired_ratio'] <= TARGET else 'NO'} | {below} |")
  text = "\n".join(lines) + "\n"
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "qat_step.md"), "w", encoding="utf-8") as f:
    f.write(text)
  with open(os.path.join(out, "qat_step.json"), "w", encoding="utf-8") as f:
    json.dump({"tf_qdq": ours, "tfmot": theirs, "load_average": load,
               "machine": machine}, f, indent=1)
  # benchmarks.md shows the same table (its section between the markers).
  body = text.split("\n", 1)[1]
  replace_marked(os.path.join(out, "benchmarks.md"), QAT_STEP_START,
                 QAT_STEP_END,
                 body + "\nRaw numbers: [qat_step.json](qat_step.json).")
  print(text)


def profile(rounds, nets, rows=25):
  """Where a step's time goes: the TF profiler's trace (xplane) of `rounds`
  train_on_batch calls of the float model and of its QAT copy, summed per op
  type (wall time of each op event on the host, per step). The profiler
  slows small ops down, and ops that run concurrently share the 2 cores:
  read the differences, not the totals."""
  import collections  # pylint: disable=import-outside-toplevel
  import glob  # pylint: disable=import-outside-toplevel
  import shutil  # pylint: disable=import-outside-toplevel
  import tempfile  # pylint: disable=import-outside-toplevel
  import keras  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=import-outside-toplevel
  import tf_qdq.keras as qk  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  x = rng.normal(size=(BATCH, 32, 32, 3)).astype(np.float32)
  y = rng.integers(0, 10, size=BATCH)

  def per_op_type(model):
    for _ in range(3):
      model.train_on_batch(x, y)
    logdir = tempfile.mkdtemp(prefix="qat_step_profile_")
    try:
      tf.profiler.experimental.start(logdir)
      for _ in range(rounds):
        model.train_on_batch(x, y)
      tf.profiler.experimental.stop()
      space = xplane_pb2.XSpace()
      path = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0]
      with open(path, "rb") as f:
        space.ParseFromString(f.read())
    finally:
      shutil.rmtree(logdir, ignore_errors=True)
    micros, count = collections.Counter(), collections.Counter()
    for plane in space.planes:
      if not plane.name.startswith("/host:CPU"):
        continue
      for line in plane.lines:
        for event in line.events:
          name = plane.event_metadata[event.metadata_id].name
          kind = name.rsplit(":", 1)[-1].strip()
          if ":" in name and not kind.startswith("__"):
            micros[kind] += event.duration_ps / 1e6 / rounds
            count[kind] += 1 / rounds
    return micros, count

  def interleaved(float_model, qat):
    """Both models' per-step figures, each the mean of two traces taken in
    the order float, QAT, QAT, float (a drifting load weighs on both)."""
    traces = [per_op_type(m) for m in (float_model, qat, qat, float_model)]
    def mean(a, b):
      return collections.Counter(
          {k: (a[k] + b[k]) / 2 for k in set(a) | set(b)})
    (f0, c0), (q1, n1), (q2, n2), (f3, c3) = traces
    return ((mean(f0, f3), mean(c0, c3)), (mean(q1, q2), mean(n1, n2)))

  for name in nets:
    keras.utils.set_random_seed(0)
    float_model = NETS[name](keras)
    qat = qk.quantize_model(float_model, verbose=False)
    for model in (float_model, qat):
      _compile(keras, model)
    (fm, fc), (qm, qc) = interleaved(float_model, qat)
    for table in (fm, fc, qm, qc):  # the executor's own, nesting the ops
      for kind in ("Run", "Process"):
        table.pop(kind, None)
    print(f"{name}: per step, float {sum(fc.values()):.0f} op events, "
          f"{sum(fm.values()) / 1e3:.1f} ms in them; QAT "
          f"{sum(qc.values()):.0f}, {sum(qm.values()) / 1e3:.1f} ms")
    print(f"  {'op type':48s} {'float us':>9s} {'QAT us':>9s} "
          f"{'QAT - float':>11s} {'n float':>7s} {'n QAT':>6s}")
    kinds = sorted(set(fm) | set(qm), key=lambda k: -abs(qm[k] - fm[k]))
    for kind in kinds[:rows]:
      print(f"  {kind:48s} {fm[kind]:9.0f} {qm[kind]:9.0f} "
            f"{qm[kind] - fm[kind]:11.0f} {fc[kind]:7.0f} {qc[kind]:6.0f}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=40)
  parser.add_argument("--out", default=os.path.join(ROOT, "docs"))
  parser.add_argument("--skip-tfmot", action="store_true",
                      help="only tf_qdq (no tfmot venv)")
  parser.add_argument("--profile", nargs="*", metavar="NET",
                      help="print where a step's time goes (TF profiler "
                      f"trace, per op type) for NETs (default all: "
                      f"{', '.join(NETS)}) over --rounds steps; no timing")
  parser.add_argument("--tfmot-worker", action="store_true",
                      help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if args.profile is not None:
    profile(args.rounds, args.profile or list(NETS))
    return 0
  if args.tfmot_worker:
    print(json.dumps(measure_tfmot(args.rounds)))
    return 0
  machine = harness.machine_info()
  print("qat_step: " + harness.describe(machine), flush=True)
  load_before = harness.loadavg()[0]
  ours = measure_tf_qdq(args.rounds)
  theirs = None if args.skip_tfmot else run_tfmot_subprocess(args.rounds)
  report(ours, theirs, args.out, (load_before, harness.loadavg()[0]),
         machine)
  return 0


if __name__ == "__main__":
  sys.exit(main())
