"""Keras models with tf_qdq layers, saved three ways and reloaded in a fresh
process: model.save("m.keras") + keras.models.load_model, model.export(dir)
and tf.saved_model.save. After `import tf_qdq` each gives the same bits; a
process that never imports tf_qdq cannot load the SavedModel and gets
TensorFlow's "Op type not registered 'TfQdq>...'" error.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import keras

import tf_qdq
import tf_qdq.keras as qk

pytestmark = pytest.mark.slow  # trains, converts, starts processes


def quantize_symmetric_qdq(model, **kwargs):
  """These tests cover the symmetric_qdq scheme (tf-qdq 0.1's default)."""
  return qk.quantize_model(model, scheme="symmetric_qdq", **kwargs)


def _env():
  env = dict(os.environ)
  root = os.path.dirname(os.path.dirname(os.path.abspath(tf_qdq.__file__)))
  env["PYTHONPATH"] = os.pathsep.join(
      [root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  return env


def _python(script, cwd):
  return subprocess.run([sys.executable, "-c", textwrap.dedent(script)],
                        env=_env(), cwd=cwd, capture_output=True, text=True,
                        timeout=300)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """A trained QAT model with every tf_qdq layer, saved three ways."""
  keras.utils.clear_session()
  keras.utils.set_random_seed(0)
  rng = np.random.default_rng(0)
  inputs = keras.Input((8, 8, 1))
  h = qk.QuantizeDequantize(num_bits=8, signed=False, range_mode="fixed",
                            init_min=0.0, init_max=1.0)(inputs)
  h = keras.layers.Conv2D(4, 3, activation="relu")(h)
  h = qk.FakeQuant(num_bits=6, per_channel=True, init_min=0.0, init_max=2.0)(h)
  h = keras.layers.Flatten()(h)
  h = qk.QuantizeDequantize(num_bits=6, range_mode="dynamic")(h)
  outputs = keras.layers.Dense(3)(h)
  model = quantize_symmetric_qdq(keras.Model(inputs, outputs), num_bits=5,
                                 verbose=False)
  x = rng.random((16, 8, 8, 1)).astype(np.float32)
  model.compile(keras.optimizers.Adam(0.01), "mse")
  model.fit(x, rng.standard_normal((16, 3)).astype(np.float32), epochs=3,
            verbose=0)
  expected = model.predict(x, verbose=0)
  d = tmp_path_factory.mktemp("saved")
  model.save(str(d / "m.keras"))
  model.export(str(d / "exported"), verbose=False)
  tf.saved_model.save(model, str(d / "tf_saved_model"))
  np.save(d / "x.npy", x)
  np.save(d / "expected.npy", expected)
  return d


def test_reloads_in_a_fresh_process_with_identical_outputs(saved):
  proc = _python("""
      import numpy as np
      import tensorflow as tf
      import keras
      import tf_qdq, tf_qdq.keras  # registers the ops and the layers
      x, expected = np.load("x.npy"), np.load("expected.npy")
      def same(name, y):
        y = np.asarray(y)
        assert y.dtype == expected.dtype and y.shape == expected.shape, name
        assert np.array_equal(y.view(np.uint32), expected.view(np.uint32)), (
            name, np.abs(y - expected).max())
        print("identical:", name)
      same("keras", keras.models.load_model("m.keras").predict(x, verbose=0))
      exported = tf.saved_model.load("exported")  # owns the variables
      same("export", exported.serve(tf.constant(x)))
      loaded = tf.saved_model.load("tf_saved_model")
      serving = loaded.signatures["serving_default"]
      (name,) = serving.structured_input_signature[1]
      (y,) = serving(**{name: tf.constant(x)}).values()
      same("tf.saved_model", y)
      graph = serving.graph.as_graph_def()
      ops = {n.op for f in graph.library.function for n in f.node_def}
      print("ops:", sorted(o for o in ops if o.startswith("TfQdq>")))
  """, cwd=saved)
  assert proc.returncode == 0, proc.stderr[-4000:]
  for name in ("keras", "export", "tf.saved_model"):
    assert f"identical: {name}" in proc.stdout
  assert "TfQdq>FakeQuantWithMinMaxVars" in proc.stdout  # the graph holds them


def test_loading_without_tf_qdq_names_the_missing_op(saved):
  proc = _python("""
      import sys
      import tensorflow as tf
      try:
        tf.saved_model.load("exported")
      except Exception as e:  # pylint: disable=broad-except
        print(type(e).__name__, e)
        sys.exit(3)
      assert "tf_qdq" not in sys.modules
  """, cwd=saved)
  assert proc.returncode == 3, (proc.stdout, proc.stderr[-2000:])
  assert "Op type not registered 'TfQdq>" in proc.stdout


# ---- files saved before the package moved into subpackages -------------------

_RELEASE_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "data")


@pytest.mark.parametrize("name", ["int8", "symmetric_qdq", "op_layers"])
def test_loads_keras_files_saved_by_the_release(name):
  """tests/keras/data/release_*.keras were written by tf-qdq 0.1.0 while the
  layers lived in tf_qdq._keras_* modules (make_release_models.py there):
  they load by the registered names ("tf_qdq>QuantizedLayer", ...) and
  compute the outputs they were saved with (bit for bit where the model
  ends on a quantizer grid)."""
  path = os.path.join(_RELEASE_DATA, f"release_{name}.keras")
  expected = np.load(os.path.join(_RELEASE_DATA, f"release_{name}.npz"))
  model = keras.models.load_model(path)
  tf_qdq_layers = [layer for layer in model._flatten_layers(include_self=False)  # pylint: disable=protected-access
                   if type(layer).__module__.startswith("tf_qdq.keras.")]
  assert tf_qdq_layers, "no tf_qdq layer was deserialized"
  got = model(expected["x"], training=False).numpy()
  if name == "int8":  # ends on a quantizer's grid: the same bits on any CPU
    np.testing.assert_array_equal(got.view(np.uint32),
                                  expected["y"].view(np.uint32))
  else:
    # These end in a float Dense, whose matmul TF's Eigen kernels sum in a
    # different order on AVX2 and on AVX-512 CPUs: up to 7 ULPs apart
    # (measured on an AMD EPYC against outputs saved on a Xeon). A layer
    # that loaded with a wrong config or range moves the outputs by a
    # quantization step, thousands of times more.
    np.testing.assert_allclose(got, expected["y"], rtol=2e-6, atol=1e-7)
  if name == "int8":
    assert isinstance(model, qk.QuantizedModel)
