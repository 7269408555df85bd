"""quantize_model's "int8" scheme: where the quantizers go, BatchNormalization
folding, constant ranges in inference, moving averages that survive bad
batches, serialization, XLA and mixed precision."""
import numpy as np
import pytest
import tensorflow as tf
import keras

import tf_qdq
import tf_qdq.keras as qk
from _parity_util import assert_same_bits
from _qat_models import mobilenet_v2_style, resnet_style

L = keras.layers


def _kinds(model):
  return [type(layer).__name__ for layer in model.layers]


def test_quantizers_sit_where_the_int8_runtime_quantizes():
  qat = qk.quantize_model(mobilenet_v2_style(), verbose=False)
  kinds = _kinds(qat)
  # input, then Conv+BN+ReLU6 fused; Add and global pooling requantize.
  assert kinds[:3] == ["InputLayer", "ActivationQuantizer", "QuantizedLayer"]
  assert kinds.count("QuantizedLayer") == 8
  assert "BatchNormalization" not in kinds and "ReLU" not in kinds
  assert len(qat.folded_batch_norms) == 7
  assert kinds.count("Add") == 2
  for i, kind in enumerate(kinds):
    if kind in ("Add", "GlobalAveragePooling2D"):
      assert kinds[i + 1] == "ActivationQuantizer"
  activations = {layer.name: layer.activation for layer in qat.layers
                 if isinstance(layer, qk.QuantizedLayer)}
  assert sorted(set(activations.values())) == ["linear", "relu6"]
  assert qat.unquantized_layers == ()


def test_add_then_relu_quantizes_after_the_relu_and_max_pool_keeps_its_range():
  qat = qk.quantize_model(resnet_style(), verbose=False)
  kinds = _kinds(qat)
  for i, kind in enumerate(kinds):
    if kind == "Add":
      assert kinds[i + 1:i + 3] == ["ReLU", "ActivationQuantizer"]
    if kind in ("MaxPooling2D", "Flatten"):
      assert kinds[i + 1] != "ActivationQuantizer"
  softmax = qat.layers[-1]
  assert isinstance(softmax, qk.ActivationQuantizer)
  assert softmax.range_mode == "fixed"
  assert softmax.range() == (0.0, 255.0 / 256.0)


def test_add_before_a_dense_with_relu_keeps_its_quantizer():
  """Only an activation layer fuses into TFLite's ADD: a Dense with its own
  ReLU reads the Add's output as its int8 input."""
  x = keras.Input((6,))
  y = L.Add()([L.Dense(4)(x), L.Dense(4)(x)])
  qat = qk.quantize_model(keras.Model(x, L.Dense(3, activation="relu")(y)),
                          verbose=False)
  kinds = _kinds(qat)
  assert kinds[kinds.index("Add") + 1] == "ActivationQuantizer", kinds


def _conv_bn_model():
  x = keras.Input((6, 6, 3))
  y = L.Conv2D(4, 3, use_bias=True)(x)
  y = L.BatchNormalization(epsilon=1e-3)(y)
  y = L.ReLU()(y)
  model = keras.Model(x, y)
  rng = np.random.default_rng(1)
  bn = model.layers[2]
  bn.set_weights([rng.uniform(0.5, 2, 4).astype(np.float32),   # gamma
                  rng.normal(size=4).astype(np.float32),       # beta
                  rng.normal(size=4).astype(np.float32),       # moving mean
                  rng.uniform(0.5, 2, 4).astype(np.float32)])  # moving var
  return model


def test_inference_is_the_folded_int8_convolution_bit_for_bit():
  model = _conv_bn_model()
  qat = qk.quantize_model(model, verbose=False)
  layer = qat.layers[2]
  x = np.random.default_rng(2).normal(size=(2, 6, 6, 3)).astype(np.float32)
  conv, bn = model.layers[1], model.layers[2]
  gamma, beta, mean, var = [w.numpy() for w in bn.weights]
  scale = tf.constant(gamma) / tf.sqrt(tf.constant(var) + bn.epsilon)
  folded = conv.kernel.numpy() * scale
  limit = tf.reduce_max(tf.abs(tf.reshape(folded, [-1, 4])), axis=0)
  w = tf_qdq.fake_quant_with_min_max_vars_per_channel(
      tf.reshape(folded, [-1, 4]), -limit, limit, narrow_range=True)
  bias = tf.constant(beta) + (conv.bias.numpy() - tf.constant(mean)) * scale
  xq = qat.layers[1](x, training=False)  # the input quantizer
  want = tf.nn.relu(tf.nn.conv2d(xq, tf.reshape(w, folded.shape), 1, "VALID")
                    + bias)
  got = layer(xq, training=False)
  mn, mx = layer.output_quantizer.range()
  assert_same_bits(got, tf_qdq.fake_quant_with_min_max_vars(want, mn, mx))


def test_training_uses_batch_statistics_and_inference_is_constant():
  qat = qk.quantize_model(_conv_bn_model(), verbose=False)
  layer = qat.layers[2]
  x = np.random.default_rng(3).normal(size=(8, 6, 6, 3)).astype(np.float32)
  before = [w.numpy().copy() for w in layer.batch_norm.weights]
  quantizer = layer.output_quantizer
  assert not quantizer.is_calibrated
  qat(x, training=False)
  assert all(np.array_equal(a, w.numpy())  # inference updates nothing
             for a, w in zip(before, layer.batch_norm.weights))
  assert quantizer.range() == (-6.0, 6.0) and not quantizer.is_calibrated
  qat(x, training=True)
  after = [w.numpy() for w in layer.batch_norm.weights]
  assert not np.array_equal(after[2], before[2])  # moving mean moved
  assert quantizer.is_calibrated
  mn, mx = quantizer.range()
  assert mn == 0.0 < mx  # ReLU output, widened to hold 0
  # Inference never reads the batch: two batches, one range.
  first = qat(x, training=False)
  again = qat(x[:1] * 100, training=False)
  assert quantizer.range() == (mn, mx)
  assert float(tf.reduce_max(again)) <= mx + 1e-6
  assert first.shape == (8, 4, 4, 4)


def test_freeze_bn_delay_stops_the_statistics():
  qat = qk.quantize_model(_conv_bn_model(), freeze_bn_delay=2, verbose=False)
  layer = qat.layers[2]
  x = np.random.default_rng(4).normal(size=(8, 6, 6, 3)).astype(np.float32)
  means = []
  for _ in range(4):
    qat(x, training=True)
    means.append(layer.batch_norm.moving_mean.numpy().copy())
  assert not np.array_equal(means[0], means[1])
  assert np.array_equal(means[2], means[3])  # frozen after two steps
  # Frozen training computes the inference form.
  assert_same_bits(qat(x, training=True), qat(x, training=False))


def test_non_finite_batches_do_not_poison_the_ranges():
  quantizer = qk.ActivationQuantizer(momentum=0.5)
  quantizer(tf.constant([-1.0, 2.0]), training=True)
  assert quantizer.range() == (-1.0, 2.0)
  quantizer(tf.constant([np.inf, -np.inf, np.nan, 4.0]), training=True)
  assert quantizer.range() == (-0.5, 3.0)  # only 4.0 (and 0) counted
  quantizer(tf.constant([np.inf, np.nan]), training=True)  # nothing finite
  assert quantizer.range() == (-0.5, 3.0)
  out = quantizer(tf.constant([1.0, 5.0]), training=False)
  assert np.isfinite(out.numpy()).all()
  # tf-qdq 0.1's QuantizeDequantize layer: the same rule.
  qdq = qk.QuantizeDequantize(momentum=0.5)
  qdq(tf.constant([-1.0, 2.0]), training=True)
  qdq(tf.constant([np.inf, -3.0]), training=True)
  assert qdq.min.numpy() == -2.0 and qdq.max.numpy() == -0.5  # -3 counted
  with pytest.raises(ValueError, match="finite"):
    qk.ActivationQuantizer(init_min=-np.inf)
  with pytest.raises(ValueError, match="finite"):
    qk.QuantizeDequantize(init_min=-np.inf, init_max=1.0)


def test_bad_arguments_name_the_fix():
  model = _conv_bn_model()
  with pytest.raises(ValueError, match="scheme must be one of"):
    qk.quantize_model(model, scheme="tflite")
  with pytest.raises(ValueError, match=r"\[2, 8\].*symmetric_qdq"):
    qk.quantize_model(model, num_bits=12)
  with pytest.raises(ValueError, match="freeze_bn_delay"):
    qk.quantize_model(model, scheme="symmetric_qdq", freeze_bn_delay=3)
  with pytest.raises(ValueError, match="range_mode"):
    qk.ActivationQuantizer(range_mode="dynamic")


def test_unknown_layers_are_named():
  x = keras.Input((8,))
  h = L.Dense(8)(x)
  h = L.UnitNormalization(name="norm")(h)
  qat = qk.quantize_model(keras.Model(x, L.Dense(2)(h)), verbose=False)
  assert qat.unquantized_layers == ("norm",)
  assert "UnitNormalization" in qat.quantization_warnings[0][1]


def test_keras_file_round_trip_is_bit_identical(tmp_path):
  qat = qk.quantize_model(mobilenet_v2_style(), freeze_bn_delay=5,
                          verbose=False)
  x = np.random.default_rng(5).normal(size=(4, 16, 16, 3)).astype(np.float32)
  qat(x, training=True)
  path = str(tmp_path / "qat.keras")
  qat.save(path)
  loaded = keras.models.load_model(path)
  assert_same_bits(loaded(x, training=False), qat(x, training=False))


def test_fit_under_xla_matches_eager():
  results = []
  for jit in (False, True):
    keras.utils.set_random_seed(0)
    qat = qk.quantize_model(_conv_bn_model(), verbose=False)
    qat.compile(keras.optimizers.SGD(0.01), "mse", jit_compile=jit)
    x = np.random.default_rng(6).normal(size=(16, 6, 6, 3)).astype(np.float32)
    y = np.zeros((16, 4, 4, 4), np.float32)
    qat.fit(x, y, epochs=2, batch_size=8, verbose=0)
    results.append(qat.predict(x, verbose=0))
  np.testing.assert_allclose(results[0], results[1], atol=1e-5)


def _assert_stock_saved_model_gives(want, qat, x, tmp_path):
  path = qk.export(qat, str(tmp_path / "sm"), format="tf_saved_model",
                   verbose=False)
  got = tf.saved_model.load(path).signatures["serving_default"](
      tf.constant(x))
  assert_same_bits(list(got.values())[0], want)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_and_exports_exactly(policy, tmp_path):
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(policy)
  try:
    qat = qk.quantize_model(_conv_bn_model(), verbose=False)
    x = np.random.default_rng(7).normal(size=(8, 6, 6, 3)).astype(np.float32)
    qat.compile(keras.optimizers.SGD(0.01), "mse")
    qat.fit(x, np.zeros((8, 4, 4, 4), np.float32), epochs=1, verbose=0)
    # Graph mode, as serving runs it: in bfloat16, TF's graph optimizer fuses
    # Conv2D + BiasAdd + Relu into one kernel that rounds once, so Keras'
    # own eager and graph-mode predictions differ there (not tf_qdq's doing).
    want = tf.function(lambda t: qat(t, training=False))(tf.constant(x))
    assert want.dtype == policy.split("_")[1]
    _assert_stock_saved_model_gives(want, qat, x, tmp_path)
  finally:
    keras.config.set_dtype_policy(previous)


def test_training_form_is_batch_norm_of_the_unscaled_convolution():
  """Training computes BN(conv(x, Q(w*s)) / s + b) with batch statistics,
  from per-channel factors on the convolution (no extra pass), and updates
  the moving statistics as Keras' BatchNormalization does."""
  model = _conv_bn_model()
  qat = qk.quantize_model(model, verbose=False)
  layer = qat.layers[2]
  x = np.random.default_rng(8).normal(size=(8, 6, 6, 3)).astype(np.float32)
  xq = qat.layers[1](x, training=False)
  kernel, _ = layer.quantized_kernel()
  scale = layer._bn_scale()  # pylint: disable=protected-access
  unscaled = tf.nn.conv2d(xq, kernel, 1, "VALID") / scale + model.layers[1].bias
  reference_bn = L.BatchNormalization(epsilon=1e-3)
  reference_bn.build(unscaled.shape)
  reference_bn.set_weights(layer.batch_norm.get_weights())
  want = tf.nn.relu(reference_bn(unscaled, training=True))
  before = layer.output_quantizer.range()
  assert before == (-6.0, 6.0)
  got = layer(xq, training=True)
  # The output quantizer quantized `want` with the range it just learned.
  mn, mx = layer.output_quantizer.range()
  quantized = tf_qdq.fake_quant_with_min_max_vars(want, mn, mx).numpy()
  np.testing.assert_allclose(got, quantized, atol=(mx - mn) / 255 * 1.001)
  # Only values within rounding error of a grid tie may land one step away.
  assert np.mean(got.numpy() != quantized) < 0.05
  for ours, keras_bn in zip(layer.batch_norm.weights, reference_bn.weights):
    np.testing.assert_allclose(ours.numpy(), keras_bn.numpy(), rtol=1e-5,
                               atol=1e-6, err_msg=ours.path)


def test_a_zero_gamma_trains_to_beta_without_nan():
  model = _conv_bn_model()
  bn = model.layers[2]
  weights = bn.get_weights()
  weights[0][1] = 0.0  # gamma of channel 1
  bn.set_weights(weights)
  qat = qk.quantize_model(model, verbose=False)
  layer = qat.layers[2]
  x = np.random.default_rng(9).normal(size=(8, 6, 6, 3)).astype(np.float32)
  out = layer(qat.layers[1](x, training=False), training=True).numpy()
  assert np.isfinite(out).all()
  assert np.isfinite(layer.batch_norm.moving_variance.numpy()).all()
  beta = max(weights[1][1], 0.0)  # ReLU(beta), quantized
  mn, mx = layer.output_quantizer.range()
  assert np.abs(out[..., 1] - beta).max() <= (mx - mn) / 255


def test_quantizers_after_relu_reduce_only_the_maximum_and_agree():
  """non_negative quantizers (after ReLU/ReLU6) skip the min reduction; the
  range they learn is the one a full quantizer learns."""
  qat = qk.quantize_model(mobilenet_v2_style(), verbose=False)
  quantizers = [layer.output_quantizer for layer in qat.layers
                if isinstance(layer, qk.QuantizedLayer)
                and layer.output_quantizer is not None]
  flags = {q.non_negative for q in quantizers}
  assert flags == {True, False}  # relu6 outputs, and linear projections
  for q in quantizers:
    parent = [l for l in qat.layers if isinstance(l, qk.QuantizedLayer)
              and l.output_quantizer is q][0]
    assert q.non_negative == (parent.activation == "relu6")
  x = tf.nn.relu6(tf.random.stateless_normal([4, 8, 8, 3], [1, 2]) * 4)
  x = tf.tensor_scatter_nd_update(x, [[0, 0, 0, 0]], [np.nan])
  fast = qk.ActivationQuantizer(non_negative=True, momentum=0.5)
  full = qk.ActivationQuantizer(momentum=0.5)
  for batch in (x, x * 0.5, tf.where(x > 5, np.inf, x)):
    assert_same_bits(fast(batch, training=True), full(batch, training=True))
    assert fast.range() == full.range()


def test_float64_models_export_a_bit_identical_stock_saved_model(tmp_path):
  """TF has no float64 FakeQuant kernel: the stock graph uses tf_qdq's XLA
  composition of built-ins, which has the op's bits."""
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy("float64")
  try:
    qat = qk.quantize_model(_conv_bn_model(), verbose=False)
    x = np.random.default_rng(10).normal(size=(8, 6, 6, 3)).astype(np.float32)
    qat(x, training=True)
    want = qat(x, training=False)
    assert want.dtype == tf.float64
    _assert_stock_saved_model_gives(want, qat, x, tmp_path)
  finally:
    keras.config.set_dtype_policy(previous)


class _NoRoundTrip(keras.layers.Layer):
  """A layer whose get_config holds a key its __init__ rejects (as
  KerasHub's ViTPatchingAndEmbedding's does)."""

  def __init__(self, units=3, with_weights=True, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.with_weights = with_weights

  def build(self, input_shape):
    if self.with_weights:
      self.w = self.add_weight(shape=(input_shape[-1], self.units))

  def call(self, x):
    return x @ self.w if self.with_weights else x * 2.0

  def get_config(self):
    return {**super().get_config(), "units": self.units,
            "with_weights": self.with_weights, "derived": self.units + 1}


def test_layers_the_rebuild_leaves_alone_are_reused_not_rebuilt():
  x = keras.Input((4,))
  weighted = _NoRoundTrip(name="weighted")
  plain = _NoRoundTrip(with_weights=False, name="plain")
  model = keras.Model(x, plain(weighted(L.Dense(4)(x))))
  qat = qk.quantize_model(model, verbose=False)
  assert qat.get_layer("weighted") is weighted
  assert qat.get_layer("plain") is plain
  warned = " ".join(why for name, why in qat.quantization_warnings
                    if name == "weighted")
  assert "shares its weights with the float model" in warned
  assert "derived" in warned
  data = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
  assert np.isfinite(qat.predict(data, verbose=0)).all()


def test_a_keras_ops_node_without_an_int8_kernel_is_refused_by_name():
  x = keras.Input((4,))
  model = keras.Model(x, L.Dense(2)(keras.ops.exp(L.Dense(4)(x))))
  with pytest.raises(ValueError, match=r"keras.ops node 'exp' \(Exp\) "
                     "cannot be quantized.*OP_SUPPORT"):
    qk.quantize_model(model, verbose=False)


# -- layers the int8 runtime runs as other ops -----------------------------------

def _only(qat, kind):
  found = [layer for layer in qat.layers if type(layer).__name__ == kind]
  assert len(found) == 1, _kinds(qat)
  return found[0]


def test_batch_norm_on_its_own_becomes_a_depthwise_conv_with_its_relu():
  """Pre-activation BN (ResNetV2, DenseNet): a 1x1 depthwise convolution of
  kernel 1 with the BN folded in and the ReLU fused, quantized once."""
  from _qat_models import resnet_v2_style
  model = resnet_v2_style()
  qat = qk.quantize_model(model, verbose=False)
  kinds = _kinds(qat)
  assert "BatchNormalization" not in kinds and "ReLU" not in kinds
  assert qat.quantization_warnings == ()
  standalone = [layer for layer in qat.layers
                if isinstance(layer, qk.QuantizedLayer) and
                isinstance(layer.layer, L.DepthwiseConv2D) and
                layer.batch_norm is not None]
  assert len(standalone) == 3
  for layer in standalone:
    assert layer.activation == "relu" and not layer.layer.trainable
  # Its statistics train as a BN's do; inference is the folded form.
  x = np.random.default_rng(0).normal(size=(8, 16, 16, 3)).astype("f")
  bn = standalone[0].batch_norm
  before = bn.moving_mean.numpy().copy()
  qat(x, training=True)
  assert not np.array_equal(before, bn.moving_mean.numpy())
  # Inference: exactly the float BN + ReLU on the quantized input, but for
  # the output quantizer (at most half a step).
  probe = keras.Model(qat.inputs, standalone[0].output)
  inner = keras.Model(qat.inputs, standalone[0].input)
  y, u = probe(x).numpy(), inner(x).numpy()
  s = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
  expected = np.maximum(u * s + bn.beta.numpy() - bn.moving_mean.numpy() * s, 0)
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_rescaling_and_normalization_merge_into_one_constant_depthwise_conv():
  x = keras.Input((4, 4, 3))
  y = L.Rescaling(1.0 / 255.0, offset=-0.5)(x)
  y = L.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 4.0, 0.25])(y)
  model = keras.Model(x, L.Conv2D(2, 1)(y))
  qat = qk.quantize_model(model, verbose=False)
  assert qat.quantization_warnings == ()
  kinds = _kinds(qat)
  assert "Rescaling" not in kinds and "Normalization" not in kinds
  depthwise = [layer.layer for layer in qat.layers
               if isinstance(layer, qk.QuantizedLayer) and
               isinstance(layer.layer, L.DepthwiseConv2D)]
  assert len(depthwise) == 1 and not depthwise[0].trainable
  pixels = np.random.default_rng(0).uniform(0, 255, (16, 4, 4, 3)).astype("f")
  reference = model.layers[2](model.layers[1](pixels)).numpy()
  merged = depthwise[0](pixels).numpy()
  np.testing.assert_allclose(merged, reference, rtol=1e-5, atol=1e-5)
  # The int8 input quantizes raw pixels.
  qat(pixels, training=True)
  low, high = qat.layers[1].range()
  assert low <= 0.0 and high > 200.0


def _tflite_average(q, count):
  """TFLite's int8 average: acc > 0 ? (acc + n/2) / n : (acc - n/2) / n, in
  C's truncating integer division."""
  acc = int(np.sum(q))
  half = count // 2
  return int((acc + half) / count) if acc > 0 else -int((-acc + half) / count)


def test_average_pooling_rounds_onto_its_input_grid_as_tflite_does():
  """The pooled output is quantized by its input's own quantizer (TFLite's
  same-scale constraint), halves rounded away from the int8 zero, on
  exactly the integers TFLite's reference kernel computes."""
  x = keras.Input((4, 4, 1))
  h = L.Conv2D(1, 1)(x)
  model = keras.Model(x, L.AveragePooling2D(2)(h))
  qat = qk.quantize_model(model, verbose=False)
  quantizers = [layer for layer in qat.layers
                if isinstance(layer, qk.ActivationQuantizer)]
  assert len(quantizers) == 2  # the input's, the convolution's
  shared = quantizers[1]
  assert len(shared._inbound_nodes) == 2  # pylint: disable=protected-access
  rng = np.random.default_rng(1)
  data = rng.normal(size=(64, 4, 4, 1)).astype("f")
  qat(data, training=True)
  first_call = shared._inbound_nodes[0].output_tensors[0]  # pylint: disable=protected-access
  before = keras.Model(qat.inputs, first_call)(data).numpy()
  pooled = qat(data).numpy()
  mn, mx = shared.range()
  scale = (mx - mn) / 255.0
  zero = np.floor(-mn / scale + 0.5) - 128
  q_in = np.round(before / scale + zero).astype(int)
  q_out = np.round(pooled / scale + zero).astype(int)
  windows = q_in.reshape(64, 2, 2, 2, 2).transpose(0, 1, 3, 2, 4).reshape(64, 2, 2, 4)
  expected = np.zeros(windows.shape[:3], int)
  for index in np.ndindex(windows.shape[:3]):
    expected[index] = _tflite_average(windows[index], 4)
  assert np.array_equal(q_out[..., 0], expected)
  ties = (windows.sum(-1) % 4) == 2
  assert ties.any()  # the case FakeQuant alone rounds the other way


def test_activations_with_int8_kernels_are_quantized_without_warnings():
  x = keras.Input((4, 4, 2))
  y = L.LeakyReLU(0.2)(L.Conv2D(4, 1)(x))
  y = L.PReLU()(L.Conv2D(4, 1)(y))
  y = L.Activation("swish")(L.Conv2D(4, 1)(y))
  y = L.Activation("hard_sigmoid")(y)
  y = L.UpSampling2D(interpolation="bilinear")(y)
  qat = qk.quantize_model(keras.Model(x, y), verbose=False)
  assert qat.quantization_warnings == ()
  kinds = _kinds(qat)
  # swish: sigmoid on its fixed grid, then the multiply, each quantized.
  sigmoid = [layer for layer in qat.layers
             if isinstance(layer, qk.ActivationQuantizer) and
             layer.range_mode == "fixed"]
  assert len(sigmoid) == 1 and sigmoid[0].range() == (0.0, 255.0 / 256.0)
  assert "Multiply" in kinds and "Activation" in kinds


def test_elu_is_named_with_what_to_use_instead():
  x = keras.Input((4,))
  qat = qk.quantize_model(keras.Model(x, L.ELU(name="elu")(L.Dense(4)(x))),
                          verbose=False)
  assert qat.unquantized_layers == ("elu",)
  assert "keeps ELU in float" in qat.quantization_warnings[0][1]


def test_keras_applications_custom_layers_have_entries(tmp_path):
  """InceptionResNetV2's CustomScaleLayer (MUL by its constant, then ADD)
  and ConvNeXt's LayerScale (a trained per-channel scale: a trainable
  depthwise kernel); the QAT model round-trips through a .keras file."""
  from keras.src.applications.convnext import LayerScale
  from keras.src.applications.inception_resnet_v2 import CustomScaleLayer
  x = keras.Input((4, 4, 2))
  y = L.Conv2D(4, 1, activation="relu")(x)
  y = L.Activation("relu")(CustomScaleLayer(0.2)([y, L.Conv2D(4, 1)(y)]))
  y = LayerScale(0.5, 4)(L.Conv2D(4, 1)(y))
  qat = qk.quantize_model(keras.Model(x, y), verbose=False)
  assert qat.quantization_warnings == ()
  scale = [layer for layer in qat.layers
           if isinstance(layer, qk.QuantizedLayer) and
           isinstance(layer.layer, L.DepthwiseConv2D)]
  assert len(scale) == 1 and scale[0].layer.trainable
  np.testing.assert_array_equal(scale[0].layer.kernel.numpy().ravel(), 0.5)
  data = np.random.default_rng(0).normal(size=(8, 4, 4, 2)).astype("f")
  qat(data, training=True)
  path = str(tmp_path / "qat.keras")
  qat.save(path)
  assert_same_bits(keras.models.load_model(path)(data), qat(data))
