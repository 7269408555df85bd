"""tf.distribute.MirroredStrategy over two logical CPU devices.

Logical devices must be configured before TensorFlow initializes its runtime,
so the training runs in a fresh process. The same model, from the same
initial weights, is trained on one device and on two replicas with the same
global batches: the moving-average ranges (combined across replicas, then
assigned ONLY_FIRST_REPLICA) must come out bit for bit the same, and the
learned FakeQuant ranges (summed gradients) the same up to summation order.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tf_qdq

pytestmark = pytest.mark.slow  # trains, converts, starts processes

# Each script is _HEADER, then its data, build() and record(), then _FIT_BOTH.
_HEADER = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import tf_qdq.keras as qk
    rng = np.random.default_rng(0)
""")

_FIT_BOTH = textwrap.dedent("""
    result = {}
    strategies = {
        "one_device": tf.distribute.OneDeviceStrategy("/cpu:0"),
        "mirrored": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
    }
    for name, strategy in strategies.items():
      with strategy.scope():
        model = build()
      model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
      record(result, name, model, strategy)
    print("RESULT " + json.dumps(result))
""")

_SCRIPT = _HEADER + textwrap.dedent("""
    x = (rng.standard_normal((64, 6)) * 3).astype(np.float32)
    y = rng.standard_normal((64, 3)).astype(np.float32)

    def build():
      keras.utils.set_random_seed(1)
      inputs = keras.Input((6,))
      h = qk.QuantizeDequantize(num_bits=5, momentum=0.6, name="ema")(inputs)
      h = qk.QuantizeDequantize(num_bits=5, axis=-1, momentum=0.6,
                                name="ema_channels")(h)
      h = qk.FakeQuant(num_bits=5, init_min=-1.0, init_max=1.0, name="fq")(h)
      h = keras.layers.Dense(8, activation="relu", name="dense")(h)
      out = qk.quantize_model(keras.Model(inputs, keras.layers.Dense(
          3, name="logits")(h)), num_bits=6, scheme="symmetric_qdq",
          verbose=False)
      out.compile(keras.optimizers.SGD(0.05), "mse")
      return out

    def record(result, name, model, strategy):
      result[name] = {v.path: np.asarray(v.numpy()).tolist()
                      for v in model.variables}
      if name == "mirrored":
        ema = model.get_layer("ema")
        result["replicas"] = strategy.num_replicas_in_sync
        result["kinds"] = {  # the tf.Variable behind each Keras variable
            v.path: [type(v._value).__name__, str(v._value.aggregation)]
            for v in (ema.min, ema.max, ema.initialized)}
""") + _FIT_BOTH


def _run(script):
  env = dict(os.environ)
  root = os.path.dirname(os.path.dirname(os.path.abspath(tf_qdq.__file__)))
  env["PYTHONPATH"] = os.pathsep.join(
      [root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  proc = subprocess.run([sys.executable, "-c", script], env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-4000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
  return json.loads(line[len("RESULT "):])


def test_mirrored_strategy_matches_one_device():
  result = _run(_SCRIPT)
  assert result["replicas"] == 2
  for path, (kind, aggregation) in result["kinds"].items():
    assert kind == "MirroredVariable", path
    assert aggregation.endswith("ONLY_FIRST_REPLICA"), path
  one, mirrored = result["one_device"], result["mirrored"]
  assert sorted(one) == sorted(mirrored)
  ranges = [p for p in one if p.split("/")[-1] in ("min", "max", "initialized")]
  assert len(ranges) >= 9
  for path in ranges:
    a, b = np.asarray(one[path], np.float32), np.asarray(mirrored[path],
                                                          np.float32)
    if path.startswith("fq/"):  # learned: summed gradients, another order
      np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=path)
    else:  # moving averages of the global batch: the same bits
      np.testing.assert_array_equal(b, a, err_msg=path)
  for path in one:
    np.testing.assert_allclose(np.asarray(mirrored[path]),
                               np.asarray(one[path]), rtol=1e-4, atol=1e-5,
                               err_msg=path)


_INT8_SCRIPT = _HEADER + textwrap.dedent("""
    x = (rng.standard_normal((64, 6, 6, 2)) * 3).astype(np.float32)
    y = rng.standard_normal((64, 3)).astype(np.float32)

    def build():
      keras.utils.set_random_seed(1)
      inputs = keras.Input((6, 6, 2))
      h = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
      h = keras.layers.BatchNormalization(synchronized=True, name="bn")(h)
      h = keras.layers.ReLU()(h)
      h = keras.layers.GlobalAveragePooling2D()(h)
      model = keras.Model(inputs, keras.layers.Dense(3)(h))
      qat = qk.quantize_model(model, verbose=False)
      qat.compile(keras.optimizers.SGD(0.05), "mse")
      return qat

    def record(result, name, model, strategy):
      del strategy
      # In model order: auto-generated layer names differ between builds.
      result[name] = [[v.path.split("/")[-1], np.asarray(v.numpy()).tolist()]
                      for v in model.variables]
""") + _FIT_BOTH


def test_int8_scheme_under_mirrored_strategy_matches_one_device():
  """The int8 scheme's activation ranges follow the global batch (the same
  bits as one device) and its folded, synchronized BN statistics match."""
  result = _run(_INT8_SCRIPT)
  one, mirrored = result["one_device"], result["mirrored"]
  assert [n for n, _ in one] == [n for n, _ in mirrored]
  ranges = 0
  for i, ((name, a), (_, b)) in enumerate(zip(one, mirrored)):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if name in ("min", "max", "initialized"):  # moving averages
      ranges += 1
      if i < 3:  # the input's: a function of the global batch alone
        np.testing.assert_array_equal(b, a, err_msg=f"{i} {name}")
      else:  # after a layer: its values follow the all-reduced weights
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{i} {name}")
    else:
      np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5,
                                 err_msg=f"{i} {name}")
  assert ranges == 12  # input, conv, pooling and dense quantizers
