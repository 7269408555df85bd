"""Quantization-aware training with tf_qdq.keras on scikit-learn's digits.

1. Trains a small float CNN on the 8x8 digits (1797 images, shipped inside
   scikit-learn: no download).
2. Makes QAT copies with tf_qdq.keras.quantize_model (per-channel fake-quantized
   kernels, moving-average quantized activations) and fine-tunes them at 8 and
   at 4 bits.
3. Prints float vs QAT test accuracy and plots accuracy per epoch
   (<out-dir>/qat_digits_accuracy.png).
4. Exports the 8-bit model as a SavedModel, reloads it in a fresh Python
   process (after `import tf_qdq`) and checks that its predictions are
   bit-identical.

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
  return keras.Sequential([
      keras.Input((8, 8, 1), name="image"),
      keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
      keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
      keras.layers.MaxPooling2D(),
      keras.layers.Conv2D(32, 3, activation="relu"),
      keras.layers.Flatten(),
      keras.layers.Dense(64, activation="relu"),
      keras.layers.Dense(10, name="logits"),
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


_RELOAD = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    import tf_qdq  # registers the TfQdq> ops the SavedModel's graph uses
    model_dir, x_path, expected_path = sys.argv[1:4]
    x, expected = np.load(x_path), np.load(expected_path)
    restored = tf.saved_model.load(model_dir)
    y = restored.serve(tf.constant(x)).numpy()
    same = y.dtype == expected.dtype and np.array_equal(
        y.view(np.uint32), expected.view(np.uint32))
    print(f"reloaded in process {__import__('os').getpid()}: "
          f"{'identical' if same else 'DIFFERENT'} predictions "
          f"(max |diff| {np.abs(y - expected).max():.3g})")
    sys.exit(0 if same else 1)
""")


def verify_in_fresh_process(model_dir, x, expected, out_dir):
  """Reloads the SavedModel in a new Python process; True if bit-identical."""
  import tf_qdq  # pylint: disable=import-outside-toplevel
  x_path = os.path.join(out_dir, "x_test.npy")
  expected_path = os.path.join(out_dir, "qat8_predictions.npy")
  np.save(x_path, x)
  np.save(expected_path, expected)
  env = dict(os.environ)
  root = os.path.dirname(os.path.dirname(os.path.abspath(tf_qdq.__file__)))
  env["PYTHONPATH"] = os.pathsep.join(
      [root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  proc = subprocess.run(
      [sys.executable, "-c", _RELOAD, model_dir, x_path, expected_path],
      env=env, capture_output=True, text=True, check=False)
  print("  " + (proc.stdout.strip() or proc.stderr.strip()[-2000:]))
  return proc.returncode == 0


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out-dir", default=os.path.join("build", "demo"),
                      help="where the plot and the SavedModel go")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  start = time.time()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  import keras  # pylint: disable=import-outside-toplevel
  import tf_qdq.keras as qk  # pylint: disable=import-outside-toplevel

  os.makedirs(args.out_dir, exist_ok=True)
  x_train, x_test, y_train, y_test = load_data(args.seed)
  print(f"digits: {len(x_train)} training and {len(x_test)} test images, 8x8")
  keras.utils.set_random_seed(args.seed)

  print(f"\n== float32 model, {FLOAT_EPOCHS} epochs")
  model = float_model(keras)
  compile_model(keras, model, 1e-3)
  history = model.fit(x_train, y_train, batch_size=BATCH_SIZE,
                      epochs=FLOAT_EPOCHS, validation_data=(x_test, y_test),
                      verbose=1)
  histories = {"float32": (1, history.history)}
  results = [("float32", "-", None, accuracy(model, x_test, y_test))]

  qat_models = {}
  for bits in (8, 4):
    print(f"\n== QAT copy at {bits} bits, {QAT_EPOCHS[bits]} epochs")
    qat = qk.quantize_model(model, num_bits=bits)
    before = accuracy(qat, x_test, y_test)
    compile_model(keras, qat, QAT_LEARNING_RATE[bits])
    history = qat.fit(x_train, y_train, batch_size=BATCH_SIZE,
                      epochs=QAT_EPOCHS[bits], validation_data=(x_test, y_test),
                      verbose=1)
    histories[f"QAT {bits}-bit"] = (FLOAT_EPOCHS + 1, history.history)
    results.append((f"QAT {bits}-bit", str(bits), before,
                    accuracy(qat, x_test, y_test)))
    qat_models[bits] = qat

  print("\n== test accuracy (360 images)")
  print(f"  {'model':<12} {'bits':>4}  {'QAT copy, before fine-tuning':>28}  "
        f"{'after':>7}")
  for name, bits, before, after in results:
    before_text = "-" if before is None else f"{before:.2%}"
    print(f"  {name:<12} {bits:>4}  {before_text:>28}  {after:>7.2%}")
  plot_path = os.path.join(args.out_dir, "qat_digits_accuracy.png")
  plot(histories, plot_path)
  print(f"\naccuracy per epoch: {plot_path}")

  print("\n== SavedModel of the 8-bit QAT model")
  export_dir = os.path.join(os.path.abspath(args.out_dir), "qat8_saved_model")
  qat8 = qat_models[8]
  qat8.export(export_dir, verbose=False)
  print(f"  exported to {export_dir}")
  expected = qat8.predict(x_test, verbose=0)
  ok = verify_in_fresh_process(export_dir, x_test, expected,
                               os.path.abspath(args.out_dir))
  print("  verdict: " + ("PASS, the reloaded SavedModel gives identical "
                         "predictions" if ok else "FAIL, predictions differ"))
  print(f"\ntotal time: {time.time() - start:.1f} s")
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
