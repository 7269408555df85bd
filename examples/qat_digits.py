"""Train, quantize, ship, compare: tf_qdq.keras on scikit-learn's digits.

1. Trains a small float CNN (Conv + BatchNormalization + ReLU blocks) on the
   8x8 digits (1797 images, shipped inside scikit-learn: no download).
2. Makes QAT copies with tf_qdq.keras.quantize_model (the int8 scheme: BN
   folded into per-channel int8 weights, int8 activations where TFLite
   quantizes) and fine-tunes them with 8-bit and with 4-bit weights.
3. Ships them: tf_qdq.keras.export to LiteRT (fully int8), ONNX and a
   SavedModel of stock TF ops, and runs each in its runtime: LiteRT with
   XNNPACK and with the reference kernels, onnxruntime, and a fresh Python
   process that never imports tf_qdq.
4. Prints test accuracy of the float model, the QAT models in Keras and in
   each runtime, and a post-training-quantized int8 baseline made by TF's
   converter from the float model; file sizes; QAT-vs-runtime agreement; and
   plots accuracy per epoch (<out-dir>/qat_digits_accuracy.png).

    python examples/qat_digits.py [--out-dir build/demo]
"""
import argparse
import os
import subprocess
import sys
import textwrap
import time

import numpy as np

FLOAT_EPOCHS = 15
QAT_EPOCHS = {8: 4, 4: 8}
QAT_LEARNING_RATE = {8: 2e-4, 4: 5e-4}
BATCH_SIZE = 32


def load_data(seed):
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  from sklearn.model_selection import train_test_split  # pylint: disable=import-outside-toplevel
  digits = load_digits()
  x = (digits.images / 16.0).astype(np.float32)[..., None]  # [n, 8, 8, 1]
  y = digits.target.astype(np.int32)
  return train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)


def float_model(keras):
  layers = keras.layers
  return keras.Sequential([
      keras.Input((8, 8, 1), name="image"),
      layers.Conv2D(16, 3, padding="same", use_bias=False),
      layers.BatchNormalization(),
      layers.ReLU(),
      layers.Conv2D(32, 3, padding="same", use_bias=False),
      layers.BatchNormalization(),
      layers.ReLU(),
      layers.MaxPooling2D(),
      layers.Conv2D(32, 3, activation="relu"),
      layers.Flatten(),
      layers.Dense(64, activation="relu"),
      layers.Dense(10, name="logits"),
  ], name="digits_cnn")


def compile_model(keras, model, learning_rate):
  model.compile(
      optimizer=keras.optimizers.Adam(learning_rate),
      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
      metrics=["accuracy"])


def accuracy(model, x, y):
  return float(np.mean(np.argmax(model.predict(x, verbose=0), -1) == y))


def plot(histories, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(7, 4.2))
  styles = {"float32": "k", "QAT 8-bit": "tab:blue", "QAT 4-bit": "tab:red"}
  for name, (first_epoch, history) in histories.items():
    epochs = np.arange(first_epoch, first_epoch + len(history["accuracy"]))
    ax.plot(epochs, history["val_accuracy"], "-o", color=styles[name],
            markersize=3, label=f"{name} (test)")
    ax.plot(epochs, history["accuracy"], "--", color=styles[name], alpha=0.5,
            label=f"{name} (train)")
  ax.axvline(FLOAT_EPOCHS + 0.5, color="gray", linestyle=":")
  ax.text(FLOAT_EPOCHS + 0.7, 0.42, "quantize_model,\nthen fine-tuning",
          color="gray", fontsize=8)
  ax.set_xlabel("epoch")
  ax.set_ylabel("accuracy")
  ax.set_ylim(0.4, 1.005)
  ax.set_title("tf_qdq.keras: QAT on scikit-learn digits")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="center right")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


_STOCK_RELOAD = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    model_dir, x_path, out_path = sys.argv[1:4]
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    y = list(serve(tf.constant(np.load(x_path))).values())[0].numpy()
    assert not [m for m in sys.modules if m.startswith("tf_qdq")]
    np.save(out_path, y)
""")


def run_stock_saved_model(model_dir, x, out_dir):
  """Runs the stock SavedModel in a new Python process that never imports
  tf_qdq; returns its outputs."""
  x_path = os.path.join(out_dir, "x_test.npy")
  out_path = os.path.join(out_dir, "stock_saved_model_outputs.npy")
  np.save(x_path, x)
  env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run(
      [sys.executable, "-c", _STOCK_RELOAD, model_dir, x_path, out_path],
      env=env, capture_output=True, text=True, check=False, cwd=out_dir)
  if proc.returncode != 0:
    raise RuntimeError(proc.stderr[-3000:])
  return np.load(out_path)


def _float_saved_model(model, out_dir):
  path = os.path.join(out_dir, "float_saved_model")
  model.export(path, verbose=False)  # Keras' own export: a float model
  return path


def post_training_quantized(tf, model, x_train, out_dir):
  """TF's converter's own int8 post-training quantization of the float
  model, calibrated on 200 training images: the baseline QAT is for."""
  converter = tf.lite.TFLiteConverter.from_saved_model(
      _float_saved_model(model, out_dir))
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = lambda: ([x_train[i:i + 1]]
                                              for i in range(200))
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  path = os.path.join(out_dir, "ptq_int8.tflite")
  with open(path, "wb") as f:
    f.write(converter.convert())
  return path


def float_tflite(tf, model, out_dir):
  converter = tf.lite.TFLiteConverter.from_saved_model(
      _float_saved_model(model, out_dir))
  path = os.path.join(out_dir, "float.tflite")
  with open(path, "wb") as f:
    f.write(converter.convert())
  return path


def agreement(reference, outputs, step):
  """max |diff| in output steps, share within one step, argmax agreement on
  samples whose top-2 margin exceeds two steps."""
  diff = np.abs(outputs.astype(np.float64) - reference) / step
  top2 = np.sort(reference, axis=1)[:, -2:]
  clear = (top2[:, 1] - top2[:, 0]) > 2 * step
  same = reference.argmax(1) == outputs.argmax(1)
  return diff.max(), np.mean(diff <= 1 + 1e-6), np.mean(same[clear])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out-dir", default=os.path.join("build", "demo"),
                      help="where the plot and the exported models go")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  start = time.time()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import onnxruntime  # pylint: disable=import-outside-toplevel
  import tf_qdq.keras as qk  # pylint: disable=import-outside-toplevel

  out_dir = os.path.abspath(args.out_dir)
  os.makedirs(out_dir, exist_ok=True)
  x_train, x_test, y_train, y_test = load_data(args.seed)
  print(f"digits: {len(x_train)} training and {len(x_test)} test images, 8x8")
  keras.utils.set_random_seed(args.seed)

  print(f"\n== train: float32 model, {FLOAT_EPOCHS} epochs")
  model = float_model(keras)
  compile_model(keras, model, 1e-3)
  history = model.fit(x_train, y_train, batch_size=BATCH_SIZE,
                      epochs=FLOAT_EPOCHS, validation_data=(x_test, y_test),
                      verbose=2)
  histories = {"float32": (1, history.history)}

  qat_models = {}
  for bits in (8, 4):
    print(f"\n== quantize: QAT copy with {bits}-bit weights, "
          f"{QAT_EPOCHS[bits]} epochs")
    qat = qk.quantize_model(model, num_bits=bits)
    compile_model(keras, qat, QAT_LEARNING_RATE[bits])
    history = qat.fit(x_train, y_train, batch_size=BATCH_SIZE,
                      epochs=QAT_EPOCHS[bits], validation_data=(x_test, y_test),
                      verbose=2)
    histories[f"QAT {bits}-bit"] = (FLOAT_EPOCHS + 1, history.history)
    qat_models[bits] = qat

  print("\n== ship: tf_qdq.keras.export")
  paths = {
      "float": float_tflite(tf, model, out_dir),
      "ptq": post_training_quantized(tf, model, x_train, out_dir),
  }
  import warnings  # pylint: disable=import-outside-toplevel
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the 4-bit Dense warning, shown in tests
    for bits in (8, 4):
      paths[f"qat{bits}"] = qk.export(
          qat_models[bits], os.path.join(out_dir, f"qat{bits}_int8.tflite"))
  paths["onnx"] = qk.export(qat_models[8], os.path.join(out_dir, "qat8.onnx"),
                            format="onnx")
  paths["stock"] = qk.export(qat_models[8],
                             os.path.join(out_dir, "qat8_stock_saved_model"),
                             format="tf_saved_model")

  print("\n== compare on the test images")
  acc = lambda out: float(np.mean(out.argmax(1) == y_test))  # noqa: E731
  rows = []
  keras_float = model.predict(x_test, verbose=0)
  rows.append(("float32", "Keras", None, acc(keras_float), None))
  rows.append(("float32", "LiteRT", os.path.getsize(paths["float"]),
               acc(qk.run_litert(paths["float"], x_test)), None))
  ptq = qk.run_litert(paths["ptq"], x_test)
  rows.append(("PTQ int8 (TF converter)", "LiteRT", os.path.getsize(
      paths["ptq"]), acc(ptq), None))
  verdict = True
  for bits in (8, 4):
    qat = qat_models[bits]
    reference = qat(x_test, training=False).numpy()
    last = qat.layers[-1].output_quantizer
    low, high = last.range()
    step = (high - low) / 255
    size = os.path.getsize(paths[f"qat{bits}"])
    rows.append((f"QAT {bits}-bit weights", "Keras", None, acc(reference),
                 None))
    for kernels in ("XNNPACK", "reference"):
      out = qk.run_litert(paths[f"qat{bits}"], x_test,
                          reference_kernels=kernels == "reference")
      worst, within, argmax = agreement(reference, out, step)
      verdict &= argmax == 1.0
      rows.append((f"QAT {bits}-bit weights", f"LiteRT {kernels}", size,
                   acc(out), (worst, within, argmax)))
    if bits == 8:
      session = onnxruntime.InferenceSession(
          paths["onnx"], providers=["CPUExecutionProvider"])
      out = session.run(None, {session.get_inputs()[0].name: x_test})[0]
      worst, within, argmax = agreement(reference, out, step)
      verdict &= argmax == 1.0
      rows.append(("QAT 8-bit weights", "onnxruntime",
                   os.path.getsize(paths["onnx"]), acc(out),
                   (worst, within, argmax)))
      out = run_stock_saved_model(paths["stock"], x_test, out_dir)
      identical = np.array_equal(out.view(np.uint32),
                                 reference.view(np.uint32))
      verdict &= identical
      rows.append(("QAT 8-bit weights", "TF, no tf_qdq", None, acc(out),
                   "bit-identical" if identical else "DIFFERENT"))

  print(f"  {'model':<24} {'runs in':<18} {'file':>9} {'accuracy':>9}  "
        "agreement with the QAT model (output steps)")
  for name, runtime, size, accuracy_, agree in rows:
    size_text = "-" if size is None else f"{size / 1024:.1f} KB"
    if agree is None:
      agree_text = ""
    elif isinstance(agree, str):
      agree_text = agree
    else:
      agree_text = (f"max {agree[0]:.0f}, {agree[1]:.1%} within 1, argmax "
                    f"{agree[2]:.0%} on clear margins")
    print(f"  {name:<24} {runtime:<18} {size_text:>9} {accuracy_:>9.2%}  "
          f"{agree_text}")
  plot_path = os.path.join(out_dir, "qat_digits_accuracy.png")
  plot(histories, plot_path)
  print(f"\naccuracy per epoch: {plot_path}")
  print("verdict: " + ("PASS, every runtime agrees with the QAT model" if
                       verdict else "FAIL, a runtime disagrees"))
  print(f"total time: {time.time() - start:.1f} s")
  return 0 if verdict else 1


if __name__ == "__main__":
  sys.exit(main())
