"""tf_qdq.keras: FakeQuant, QuantizeDequantize and quantize_model.

Config round trips, range learning, moving-average semantics, quantize_model
on Sequential and functional models with every supported layer type, training
with and without XLA, mixed precision (no casts around the ops), and an
in-process .keras round trip (tests/keras/test_saved_model_keras.py reloads in a
fresh process).
"""
import numpy as np
import pytest
import tensorflow as tf
import keras

import tf_qdq
import tf_qdq.keras as qk
from _parity_util import assert_same_bits


def quantize_symmetric_qdq(model, **kwargs):
  """These tests cover the symmetric_qdq scheme (tf-qdq 0.1's default)."""
  return qk.quantize_model(model, scheme="symmetric_qdq", **kwargs)


@pytest.fixture(autouse=True)
def _float32_policy():
  keras.utils.clear_session()
  yield
  keras.mixed_precision.set_global_policy("float32")


def _data(shape, seed=0, scale=1.0):
  return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(
      np.float32)


# ---- configs -----------------------------------------------------------------


@pytest.mark.parametrize("layer", [
    qk.FakeQuant(),
    qk.FakeQuant(num_bits=4, narrow_range=True, per_channel=True, axis=1,
                 init_min=-2.0, init_max=3.0, trainable_range=False,
                 name="fq"),
    qk.QuantizeDequantize(),
    qk.QuantizeDequantize(num_bits=5, signed=False, narrow_range=True,
                          round_mode="HALF_UP", axis=-1, range_mode="fixed",
                          momentum=0.5, init_min=0.0, init_max=4.0),
    qk.QuantizeDequantize(range_mode="dynamic", axis=0),
    qk.QuantizeWrapper(keras.layers.Conv2D(3, 2, activation="relu"),
                       num_bits=4, per_channel=False),
], ids=lambda layer: type(layer).__name__)
def test_config_round_trips(layer):
  config = layer.get_config()
  again = type(layer).from_config(config)
  assert again.get_config() == config
  # Through Keras' registry, as .keras files store them.
  serialized = keras.saving.serialize_keras_object(layer)
  assert serialized["registered_name"].startswith("tf_qdq>")
  restored = keras.saving.deserialize_keras_object(serialized)
  assert type(restored) is type(layer)
  assert restored.get_config() == config


def test_bad_arguments_are_rejected():
  with pytest.raises(ValueError, match="num_bits"):
    qk.FakeQuant(num_bits=1)
  with pytest.raises(ValueError, match="range_mode"):
    qk.QuantizeDequantize(range_mode="ema")
  with pytest.raises(ValueError, match="needs init_min"):
    qk.QuantizeDequantize(range_mode="fixed")
  with pytest.raises(ValueError, match="not one of"):
    qk.QuantizeWrapper(keras.layers.SeparableConv2D(2, 3))


# ---- the layers compute the ops ----------------------------------------------


def test_fake_quant_layer_is_the_op():
  x = tf.constant(_data((4, 5, 3), scale=3.0))
  layer = qk.FakeQuant(num_bits=5, init_min=-2.0, init_max=1.5)
  assert_same_bits(layer(x), tf_qdq.fake_quant_with_min_max_vars(
      x, -2.0, 1.5, num_bits=5))
  per_channel = qk.FakeQuant(num_bits=3, per_channel=True, axis=1,
                             init_min=-1.0, init_max=1.0)
  y = per_channel(x)
  assert per_channel.min.shape == (5,)
  expected = tf_qdq.fake_quant_with_min_max_vars_per_channel(
      tf.transpose(x, [0, 2, 1]), -tf.ones(5), tf.ones(5), num_bits=3)
  assert_same_bits(y, tf.transpose(expected, [0, 2, 1]))


def test_fixed_and_dynamic_ranges_are_the_op():
  x = tf.constant(_data((6, 4), scale=2.0))
  fixed = qk.QuantizeDequantize(num_bits=4, range_mode="fixed", init_min=-1.0,
                                init_max=2.0, round_mode="HALF_UP")
  assert_same_bits(fixed(x, training=True), tf_qdq.quantize_and_dequantize_v4(
      x, -1.0, 2.0, num_bits=4, range_given=True, round_mode="HALF_UP"))
  assert not fixed.trainable_weights
  dynamic = qk.QuantizeDequantize(num_bits=3, range_mode="dynamic", axis=1)
  assert not dynamic.weights
  assert_same_bits(dynamic(x), tf_qdq.quantize_and_dequantize_v2(
      x, tf.zeros(4), tf.zeros(4), num_bits=3, axis=1))


# ---- range learning ----------------------------------------------------------


def _learn_range(init_min, init_max, target_fn, steps=40):
  """Trains FakeQuant's range alone on y = target_fn(x); returns (min, max)."""
  x = np.linspace(-3.0, 3.0, 601, dtype=np.float32)[:, None]
  layer = qk.FakeQuant(num_bits=8, init_min=init_min, init_max=init_max)
  model = keras.Sequential([keras.Input((1,)), layer])
  model.compile(keras.optimizers.SGD(0.5), "mse")
  model.fit(x, target_fn(x), batch_size=601, epochs=steps, verbose=0)
  return float(layer.min.numpy()), float(layer.max.numpy())


def test_range_grows_to_cut_clipping():
  mn, mx = _learn_range(-1.0, 1.0, lambda x: x)
  assert mn < -1.5 and mx > 1.5, (mn, mx)


def test_range_shrinks_towards_a_clipped_target():
  mn, mx = _learn_range(-2.5, 2.5, lambda x: np.clip(x, -0.5, 1.0))
  assert -1.0 < mn < -0.3 and 0.8 < mx < 1.5, (mn, mx)


@pytest.mark.filterwarnings("ignore:The model does not have any trainable")
def test_range_stays_when_not_trainable():
  layer = qk.FakeQuant(init_min=-1.0, init_max=1.0, trainable_range=False)
  model = keras.Sequential([keras.Input((1,)), layer])
  model.compile(keras.optimizers.SGD(0.5), "mse")
  x = np.linspace(-3, 3, 50, dtype=np.float32)[:, None]
  assert not model.trainable_weights
  model.fit(x, x, epochs=2, verbose=0)
  assert layer.min.numpy() == -1.0 and layer.max.numpy() == 1.0


# ---- moving average ----------------------------------------------------------


def test_moving_average_updates_only_in_training():
  layer = qk.QuantizeDequantize(num_bits=6, momentum=0.75)
  a = tf.constant([[-1.0, 0.5], [2.0, 0.25]])
  b = tf.constant([[-3.0, 1.0], [np.nan, 4.0]])  # NaN: skipped, as by the op
  # Before any training step: each batch's own range (as "dynamic").
  assert_same_bits(layer(b, training=False),
                   tf_qdq.quantize_and_dequantize_v4(b, 0.0, 0.0, num_bits=6))
  assert layer.initialized.numpy() == 0.0
  # The first training batch sets the range, later ones average into it.
  y = layer(a, training=True)
  assert (layer.min.numpy(), layer.max.numpy()) == (-1.0, 2.0)
  assert_same_bits(y, tf_qdq.quantize_and_dequantize_v4(
      a, -1.0, 2.0, num_bits=6, range_given=True))
  y = layer(b, training=True)
  f = np.float32
  ema_min = f(-1.0) * f(0.75) + f(-3.0) * f(0.25)
  ema_max = f(2.0) * f(0.75) + f(4.0) * f(0.25)
  assert (layer.min.numpy(), layer.max.numpy()) == (ema_min, ema_max)
  assert_same_bits(y, tf_qdq.quantize_and_dequantize_v4(
      b, ema_min, ema_max, num_bits=6, range_given=True))  # the updated range
  # Inference: the stored range, no update.
  y = layer(b * 10.0, training=False)
  assert (layer.min.numpy(), layer.max.numpy()) == (ema_min, ema_max)
  assert_same_bits(y, tf_qdq.quantize_and_dequantize_v4(
      b * 10.0, ema_min, ema_max, num_bits=6, range_given=True))


@pytest.mark.filterwarnings("ignore:The model does not have any trainable")
def test_moving_average_with_initial_range_and_channels():
  layer = qk.QuantizeDequantize(axis=-1, momentum=0.5, init_min=-4.0,
                                init_max=4.0)
  x = tf.constant([[1.0, -2.0], [3.0, -1.0]])
  layer(x, training=True)
  np.testing.assert_array_equal(layer.min.numpy(), [-1.5, -3.0])
  np.testing.assert_array_equal(layer.max.numpy(), [3.5, 1.5])
  # fit() runs the training branch, predict() the inference one.
  model = keras.Sequential([keras.Input((2,)), layer])
  model.compile("sgd", "mse")
  model.fit(x, x, batch_size=2, epochs=1, verbose=0)
  np.testing.assert_array_equal(layer.min.numpy(), [-0.25, -2.5])
  before = layer.max.numpy()
  model.predict(x * 5, verbose=0)
  np.testing.assert_array_equal(layer.max.numpy(), before)


# ---- quantize_model ----------------------------------------------------------


def _every_supported_layer_models():
  """A functional model with each supported type (and some unsupported)."""
  i2 = keras.Input((6, 6, 2), name="image")
  x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(i2)
  x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)
  x = keras.layers.Conv2DTranspose(3, 3, strides=2)(x)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.SeparableConv2D(2, 3)(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  i1 = keras.Input((8, 3), name="sequence")
  y = keras.layers.Conv1D(4, 3, padding="causal", activation="relu6")(i1)
  y = keras.layers.Conv1DTranspose(2, 3)(y)
  y = keras.layers.Flatten()(y)
  i3 = keras.Input((4, 4, 4, 1), name="volume")
  z = keras.layers.Conv3D(2, 2, groups=1)(i3)
  z = keras.layers.Flatten()(z)
  merged = keras.layers.Concatenate()([x, y, z])
  out = keras.layers.Dense(5, activation="softmax")(
      keras.layers.Dense(8)(merged))
  functional = keras.Model([i2, i1, i3], out)
  sequential = keras.Sequential([
      keras.Input((6, 6, 2)),
      keras.layers.Conv2D(3, 3, activation="relu"),
      keras.layers.MaxPooling2D(),
      keras.layers.Flatten(),
      keras.layers.Dense(4),
  ])
  inputs = {
      "functional": [_data((3, 6, 6, 2), 1), _data((3, 8, 3), 2),
                     _data((3, 4, 4, 4, 1), 3)],
      "sequential": _data((3, 6, 6, 2), 4),
  }
  return {"functional": functional, "sequential": sequential}, inputs


def test_quantize_model_wraps_every_supported_layer(capsys):
  models, inputs = _every_supported_layer_models()
  functional = models["functional"]
  qat = quantize_symmetric_qdq(functional, num_bits=16)
  printed = capsys.readouterr().out
  wrapped = {l.layer.__class__.__name__ for l in qat.layers
             if isinstance(l, qk.QuantizeWrapper)}
  assert wrapped == {"Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Conv1D",
                     "Conv3D", "Dense"}
  assert len(qat.quantized_layers) == 7
  # What was left alone is named: on the model and in the printed summary.
  assert {functional.get_layer(n).__class__.__name__
          for n in qat.unquantized_layers} == {
              "BatchNormalization", "SeparableConv2D", "GlobalAveragePooling2D",
              "Conv1DTranspose", "Flatten", "Concatenate"}
  for name in ("batch_normalization", "separable_conv2d", "conv1d_transpose"):
    assert name in qat.unquantized_layers and name in printed
  assert "WITH weights" in printed
  # The weights are copies of the original's; the original is untouched.
  for layer in qat.layers:
    source = layer.layer if isinstance(layer, qk.QuantizeWrapper) else layer
    if source.weights:
      original = functional.get_layer(source.name)
      for a, b in zip(source.get_weights(), original.get_weights()):
        np.testing.assert_array_equal(a, b)
      assert source is not original
  # At 16 bits the QAT model computes what the float model does: the kernels
  # reach each layer in the right layout (depthwise, transposed).
  x = inputs["functional"]
  np.testing.assert_allclose(qat.predict(x, verbose=0),
                             functional.predict(x, verbose=0),
                             rtol=2e-3, atol=2e-4)


def test_quantize_model_descends_into_nested_models():
  block = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4),
                            keras.layers.Dropout(0.1)], name="block")
  inputs = keras.Input((5,))
  model = keras.Model(inputs, keras.layers.Dense(2)(block(inputs)))
  qat = quantize_symmetric_qdq(model, num_bits=16, verbose=False)
  nested = qat.get_layer("block")
  assert nested is not block
  assert isinstance(nested.layers[0], qk.QuantizeWrapper)
  np.testing.assert_array_equal(nested.layers[0].layer.kernel.numpy(),
                                block.layers[0].kernel.numpy())
  assert "dropout" in qat.unquantized_layers
  x = _data((4, 5))
  np.testing.assert_allclose(qat.predict(x, verbose=0),
                             model.predict(x, verbose=0), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("per_channel", [True, False])
def test_quantized_kernels_are_on_a_symmetric_grid(per_channel):
  models, inputs = _every_supported_layer_models()
  qat = quantize_symmetric_qdq(models["functional"], num_bits=3,
                          per_channel_weights=per_channel, verbose=False)
  for layer in qat.layers:
    if not isinstance(layer, qk.QuantizeWrapper):
      continue
    q = layer.quantized_kernel().numpy()
    if isinstance(layer.layer, keras.layers.Conv2DTranspose):
      q = np.swapaxes(q, -1, -2)
    columns = q.reshape(-1, q.shape[-1] * (
        q.shape[-2] if isinstance(layer.layer, keras.layers.DepthwiseConv2D)
        else 1))
    groups = columns.T if per_channel else [columns.ravel()]
    for values in groups:
      levels = np.unique(values)
      assert len(levels) <= 7  # narrow range: -3..3 steps
      step = np.abs(values).max() / 3
      np.testing.assert_allclose(levels / step, np.round(levels / step),
                                 atol=1e-4)


def test_quantize_model_sequential_trains_with_and_without_xla():
  models, inputs = _every_supported_layer_models()
  qat = quantize_symmetric_qdq(models["sequential"], num_bits=4, verbose=False)
  x = inputs["sequential"]
  y = _data((3, 4), 5)
  for jit_compile in (False, True):
    qat.compile(keras.optimizers.Adam(0.01), "mse", jit_compile=jit_compile)
    assert qat.jit_compile == jit_compile
    history = qat.fit(x, y, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
  output_quantizer = qat.layers[0].output_quantizer
  assert output_quantizer.initialized.numpy() == 1.0
  assert output_quantizer.min.numpy() == 0.0  # after a ReLU: unsigned grid
  assert not output_quantizer.signed


def test_layers_fit_under_xla_like_eager():
  """FakeQuant and QuantizeDequantize in model.fit with jit_compile=True: the
  same updates as without XLA (the ops' bits are equal; the small Dense and
  optimizer arithmetic may round differently, hence the tolerance)."""
  x = _data((32, 6), 7, scale=2.0)
  y = _data((32, 2), 8)
  results = []
  for jit_compile in (False, True):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((6,)),
        qk.QuantizeDequantize(num_bits=5, momentum=0.9),
        qk.FakeQuant(num_bits=5, per_channel=True, init_min=-1.0,
                     init_max=1.0),
        keras.layers.Dense(2),
        qk.FakeQuant(num_bits=6, init_min=-0.5, init_max=0.5),
    ])
    model.compile(keras.optimizers.SGD(0.05), "mse", jit_compile=jit_compile)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    results.append([v.numpy() for v in model.variables])
  for eager, xla in zip(*results):
    np.testing.assert_allclose(xla, eager, rtol=1e-4, atol=1e-5)


# ---- mixed precision ---------------------------------------------------------


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_runs_the_ops_in_the_compute_dtype(policy):
  keras.mixed_precision.set_global_policy(policy)
  compute = tf.as_dtype(keras.mixed_precision.global_policy().compute_dtype)
  inputs = keras.Input((6,))
  h = keras.layers.Dense(8, activation="relu")(inputs)
  h = qk.FakeQuant(num_bits=8, init_min=0.0, init_max=0.25)(h)
  h = qk.QuantizeDequantize(num_bits=8, signed=False)(h)
  h = qk.FakeQuant(num_bits=8, per_channel=True)(h)
  outputs = keras.layers.Dense(3)(h)
  model = quantize_symmetric_qdq(keras.Model(inputs, outputs), verbose=False)
  assert model.layers[-1].compute_dtype == compute.name
  # Every op on activations runs in the compute dtype, with no Cast on its
  # input or output; only the range variables are cast (autocast).
  graph = tf.function(lambda x: model(x, training=True)).get_concrete_function(
      tf.TensorSpec([None, 6], tf.float32)).graph
  on_activations = [op for op in graph.get_operations()
                    if op.type.startswith("TfQdq>") and
                    op.outputs[0].dtype == compute]
  assert len(on_activations) == 5  # 3 layers + 2 output quantizers
  for op in on_activations:
    assert op.inputs[0].op.type != "Cast", op.name
    assert all(c.type != "Cast" for c in op.outputs[0].consumers()), op.name
  for op in on_activations:
    for range_input in op.inputs[1:]:
      assert range_input.dtype == compute
  x = _data((16, 6), 9)
  model.compile(keras.optimizers.Adam(0.01), "mse")
  model.fit(x, _data((16, 3), 10), epochs=2, verbose=0)
  fake_quant = [l for l in model.layers if isinstance(l, qk.FakeQuant)][0]
  assert fake_quant.min.dtype == "float32"
  assert fake_quant.max.numpy() != 0.25  # learned in the compute dtype
  assert model.predict(x, verbose=0).dtype == compute.as_numpy_dtype


# ---- .keras in process -------------------------------------------------------


def test_keras_file_round_trip(tmp_path):
  models, inputs = _every_supported_layer_models()
  qat = quantize_symmetric_qdq(models["sequential"], num_bits=5, verbose=False)
  model = keras.Sequential([keras.Input((6, 6, 2)),
                            qk.FakeQuant(num_bits=7, per_channel=True,
                                         init_min=-3.0, init_max=3.0),
                            qat,
                            qk.QuantizeDequantize(num_bits=6, axis=-1)])
  x = inputs["sequential"]
  model.compile("adam", "mse")
  model.fit(x, _data((3, 4), 11), epochs=2, verbose=0)
  path = str(tmp_path / "m.keras")
  model.save(path)
  restored = keras.models.load_model(path)
  assert_same_bits(restored.predict(x, verbose=0), model.predict(x, verbose=0))
