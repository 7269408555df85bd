"""The layers of the default QAT scheme ("int8"): what TFLite's int8 runtime
computes, simulated in float.

TFLite's int8 quantization spec, and how each part is simulated here:

* Weights: int8, symmetric (zero point 0), narrow range [-127, 127], one scale
  per output channel. `QuantizedLayer` fake-quantizes the kernel of a
  Conv/Dense layer with FakeQuantWithMinMaxVarsPerChannel on [-L, L],
  L = max|w| per output channel (narrow range), after folding in the
  BatchNormalization that follows it.
* Activations: int8, asymmetric (a zero point), one scale per tensor.
  `ActivationQuantizer` is FakeQuantWithMinMaxVars (8 bits, full range) with
  a range learned as an exponential moving average of the batch min/max,
  widened to hold 0 (TFLite needs 0 exactly representable). Ops whose int8
  kernels have a fixed output range (softmax, logistic, tanh) get that range.
* Bias: int32 with scale = input scale * weight scale, computed by the
  converter; it is the only rounding of the int8 model that the QAT model does
  not simulate (a bias error of at most half of input scale * weight scale).
* BatchNormalization folding (Jacob et al. 2018, section 3.2; Krishnamoorthi
  2018, section 3.2), in the form PyTorch's ConvBn modules use: with
  s = gamma / sqrt(moving_var + eps) per output channel,
    training:   y = BN_batch(conv(x, Q(w * s)) / s + b)   (batch statistics,
                the moving statistics update; one convolution)
    inference:  y = conv(x, Q(w * s)) + (beta + (b - moving_mean) * s)
  which is exactly the int8 model's convolution with the folded, quantized
  weights and bias. After `freeze_bn_delay` training steps the training graph
  switches to the inference form (frozen statistics), as the papers advise.
* Fused activations: ReLU and ReLU6 after a Conv/Dense (or after its BN) are
  computed before the output quantizer, as TFLite fuses them into the op.

Export (tf_qdq._keras_export) traces these layers inside `exporting()`: every
quantity is then a constant and every op a TensorFlow built-in
(FakeQuantWithMinMaxVars with constant ranges, kernels already on the grid),
which is what TF's TFLite converter lowers to int8 and what a process without
tf_qdq can run.
"""
import contextlib
import threading

import keras
import numpy as np
import tensorflow as tf

from tf_qdq import _xla
from tf_qdq import quantization as _q
from tf_qdq._keras_layers import batch_range
from tf_qdq._keras_layers import check_initial_range
from tf_qdq._keras_layers import cross_replica_range
from tf_qdq._keras_layers import fake_quant_kernel
from tf_qdq._keras_layers import kernel_variable

_PACKAGE = "tf_qdq"

# Activations TFLite fuses into CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED
# (and ADD): computed before the output quantizer.
FUSED_ACTIVATIONS = ("linear", "relu", "relu6")

# Ops whose int8 kernels have a fixed output quantization in TFLite's spec:
# softmax and logistic scale 1/256, zero point -128 ([0, 255/256]); tanh
# scale 1/128, zero point 0 ([-1, 127/128]).
FIXED_OUTPUT_RANGES = {
    "softmax": (0.0, 255.0 / 256.0),
    "sigmoid": (0.0, 255.0 / 256.0),
    "tanh": (-1.0, 127.0 / 128.0),
}


# ---- export context ----------------------------------------------------------

_EXPORT = threading.local()


@contextlib.contextmanager
def exporting(fake_quant_weights=()):
  """Within it, the layers here build TensorFlow built-in ops with constant
  ranges and constant quantized kernels (the graph a deployment runtime gets).
  `fake_quant_weights`: names of QuantizedLayers whose constant kernel is also
  wrapped in FakeQuantWithMinMaxVarsPerChannel, so that TFLite's converter
  keeps a grid narrower than 8 bits."""
  previous = getattr(_EXPORT, "state", None)
  _EXPORT.state = {"fake_quant_weights": frozenset(fake_quant_weights)}
  try:
    yield
  finally:
    _EXPORT.state = previous


def _export_state():
  return getattr(_EXPORT, "state", None)


def builtin_fake_quant(x, mn, mx, num_bits=8, narrow_range=False):
  """FakeQuantWithMinMaxVars with TensorFlow's own ops and the bits of
  tf_qdq's op: TF's kernel for float32, the same on float32 values rounded
  once for half/bfloat16 (our op's definition for them), and tf_qdq's XLA
  composition of built-ins for float64 (TF has no double FakeQuant)."""
  dtype = x.dtype
  mn = tf.cast(tf.constant(mn, tf.float32), dtype)  # as the layer reads it
  mx = tf.cast(tf.constant(mx, tf.float32), dtype)
  if dtype == tf.float64:
    return _xla.fake_quant_with_min_max_vars(x, mn, mx, num_bits, narrow_range)
  y = tf.quantization.fake_quant_with_min_max_vars(
      tf.cast(x, tf.float32), tf.cast(mn, tf.float32), tf.cast(mx, tf.float32),
      num_bits=num_bits, narrow_range=narrow_range)
  return tf.cast(y, dtype)


# ---- activations -------------------------------------------------------------

_RANGE_MODES = ("moving_average", "fixed")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ActivationQuantizer(keras.layers.Layer):
  """An int8 activation quantizer: FakeQuantWithMinMaxVars on a per-tensor,
  asymmetric range, which TFLite's converter turns into the tensor's scale and
  zero point.

  Args:
    num_bits: 8 for TFLite (2..16 for simulation).
    range_mode: "moving_average": the range follows an exponential moving
      average of the batch min/max in training (`ema = momentum * ema +
      (1 - momentum) * batch`; the first training batch sets it) and is
      constant in inference; "fixed": init_min/init_max.
    momentum: of the moving average.
    init_min, init_max: the range before the first training batch, or the
      fixed range.
    symmetric: quantize on [-a, a * 127/128], a = max(-min, max): zero point
      0 in int8 (128 in uint8), scale a/128, as TensorRT wants. The learned
      min/max are kept as they are; only the grid is made symmetric.
    non_negative: the input is never negative (it follows a ReLU/ReLU6), so
      the widened batch minimum is 0 and only the maximum is reduced: the
      same range for one pass over the batch less.

  In training the batch range takes the finite values only (NaN and +-inf are
  skipped, so one bad batch cannot poison the range) and is widened to hold 0;
  the batch is then quantized with the updated range, and no gradient flows
  into the range. In inference the range is the variables' value: no batch
  statistic is ever used.
  """

  def __init__(self, num_bits=8, range_mode="moving_average", momentum=0.99,
               init_min=-6.0, init_max=6.0, symmetric=False,
               non_negative=False, **kwargs):
    super().__init__(**kwargs)
    if range_mode not in _RANGE_MODES:
      raise ValueError(f"ActivationQuantizer: range_mode must be one of "
                       f"{_RANGE_MODES}, got {range_mode!r}.")
    if not 2 <= int(num_bits) <= 16:
      raise ValueError(f"ActivationQuantizer: num_bits must be in [2, 16], got "
                       f"{num_bits}.")
    if not 0.0 <= float(momentum) <= 1.0:
      raise ValueError(f"ActivationQuantizer: momentum must be in [0, 1], got "
                       f"{momentum}.")
    check_initial_range("ActivationQuantizer", init_min, init_max)
    self.num_bits = int(num_bits)
    self.range_mode = range_mode
    self.momentum = float(momentum)
    self.init_min = float(init_min)
    self.init_max = float(init_max)
    self.symmetric = bool(symmetric)
    self.non_negative = bool(non_negative)
    self.supports_masking = True

  def build(self, input_shape):
    del input_shape
    # float32 whatever the dtype policy (float64 too): the ranges the ops
    # read are float32 values cast to the compute dtype.
    weight = dict(shape=(), dtype="float32", trainable=False, autocast=False,
                  aggregation="only_first_replica")
    self.min = self.add_weight(
        name="min", initializer=keras.initializers.Constant(self.init_min),
        **weight)
    self.max = self.add_weight(
        name="max", initializer=keras.initializers.Constant(self.init_max),
        **weight)
    if self.range_mode == "moving_average":
      self.initialized = self.add_weight(
          name="initialized", initializer=keras.initializers.Constant(0.0),
          **weight)

  @property
  def is_calibrated(self):
    """False for a moving-average quantizer that has seen no training batch
    (it still quantizes with init_min/init_max)."""
    if self.range_mode == "fixed":
      return True
    with tf.init_scope():
      return bool(self.initialized.numpy() > 0)

  def _grid(self, mn, mx):
    """The range the op quantizes on (float32 tensors)."""
    if not self.symmetric:
      return mn, mx
    a = tf.maximum(-mn, mx)
    return -a, a * (127.0 / 128.0)

  def range(self):
    """The inference range the op quantizes on, as Python floats."""
    with tf.init_scope():  # also while a tf.function is traced
      mn, mx = self._grid(tf.convert_to_tensor(self.min),
                          tf.convert_to_tensor(self.max))
      return float(mn.numpy()), float(mx.numpy())

  def call(self, inputs, training=None):
    if _export_state() is not None:
      return builtin_fake_quant(inputs, *self.range(), num_bits=self.num_bits)
    dtype = inputs.dtype
    if training and self.range_mode == "moving_average":
      mn, mx = self._update_moving_average(inputs)
    else:
      mn, mx = self.min.value, self.max.value
    mn, mx = self._grid(mn, mx)
    mn = tf.stop_gradient(tf.cast(mn, dtype))
    mx = tf.stop_gradient(tf.cast(mx, dtype))
    return _q.fake_quant_with_min_max_vars(inputs, mn, mx,
                                           num_bits=self.num_bits)

  def _update_moving_average(self, x):
    batch_min, batch_max = _finite_range(x, self.non_negative)
    batch_min, batch_max = cross_replica_range(batch_min, batch_max)
    # +inf > -inf: no finite value in the global batch.
    has_data = tf.cast(batch_min <= batch_max, tf.float32)
    # Widened to hold 0, the batch range is finite even then ([0, 0]).
    batch = tf.stack([tf.minimum(tf.cast(batch_min, tf.float32), 0.0),
                      tf.maximum(tf.cast(batch_max, tf.float32), 0.0)])
    old = tf.stack([self.min.value, self.max.value])
    initialized = self.initialized.value
    # The weight of the batch: 1 - momentum once initialized, 1 for the first
    # batch, 0 for a batch without a finite value (the range stays).
    weight = has_data * (1.0 - self.momentum * initialized)
    new = old * (1.0 - weight) + batch * weight
    new_min, new_max = tf.unstack(new)
    self.min.assign(new_min)
    self.max.assign(new_max)
    self.initialized.assign(tf.maximum(initialized, has_data))
    return new_min, new_max

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), "num_bits": self.num_bits,
            "range_mode": self.range_mode, "momentum": self.momentum,
            "init_min": self.init_min, "init_max": self.init_max,
            "symmetric": self.symmetric, "non_negative": self.non_negative}


def _finite_range(x, non_negative=False):
  """min/max of the finite values of x (see batch_range), in two plain
  reductions when they are finite, as they are but for a bad batch; the
  masked reductions run only then. `non_negative`: x >= 0 wherever it is a
  number, so min is taken as 0, which is what the widening to hold 0 makes
  of the true minimum anyway."""
  mx = tf.reduce_max(x)
  mn = tf.zeros_like(mx) if non_negative else tf.reduce_min(x)
  finite = tf.logical_and(tf.math.is_finite(mn), tf.math.is_finite(mx))
  return tf.cond(finite, lambda: (mn, mx), lambda: batch_range(x))


def output_quantizer_for(activation, num_bits=8, name=None, dtype=None,
                         symmetric=False):
  """The ActivationQuantizer for the output of `activation` (a name): the
  fixed range of TFLite's int8 kernel where it has one, else a moving
  average (which, after "relu"/"relu6", knows its input is never
  negative)."""
  fixed = FIXED_OUTPUT_RANGES.get(activation)
  if fixed is not None:
    return ActivationQuantizer(num_bits=num_bits, range_mode="fixed",
                               init_min=fixed[0], init_max=fixed[1], name=name,
                               dtype=dtype, symmetric=symmetric)
  return ActivationQuantizer(num_bits=num_bits, name=name, dtype=dtype,
                             symmetric=symmetric,
                             non_negative=activation in ("relu", "relu6"))


# ---- Conv/Dense with folded BatchNormalization -------------------------------

QUANTIZABLE_LAYERS = (keras.layers.Dense, keras.layers.Conv1D,
                      keras.layers.Conv2D, keras.layers.Conv3D,
                      keras.layers.DepthwiseConv2D,
                      keras.layers.Conv2DTranspose)


def output_channels(layer):
  kernel = kernel_variable(layer)
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    return kernel.shape[-2] * kernel.shape[-1]
  if isinstance(layer, keras.layers.Conv2DTranspose):
    return kernel.shape[-2]
  return kernel.shape[-1]


def _per_output_channel(layer, kernel, v):
  """v (one value per output channel) shaped to broadcast against kernel."""
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    return tf.reshape(v, kernel.shape[-2:])
  if isinstance(layer, keras.layers.Conv2DTranspose):
    return tf.reshape(v, [-1, 1])
  return v


def _apply_activation(y, activation):
  if activation == "relu":
    return tf.nn.relu(y)
  if activation == "relu6":
    return tf.nn.relu6(y)
  return y


@keras.saving.register_keras_serializable(package=_PACKAGE)
class QuantizedLayer(keras.layers.Layer):
  """A Dense/Conv layer, the BatchNormalization it feeds (folded) and its
  fused activation, with a fake-quantized kernel and an int8 output
  quantizer: one TFLite CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED /
  TRANSPOSE_CONV op. See the module docstring for the folding.

  Args:
    layer: the Dense/Conv layer, with a linear activation and no bias (its
      bias, if any, is this layer's `bias`).
    batch_norm: the BatchNormalization (over the last axis) to fold, or None.
    activation: "linear", "relu" or "relu6", applied after the bias.
    use_bias: whether the original layer had a bias.
    num_bits: of the weight grid (8 for TFLite int8; 2..8).
    per_channel: one weight scale per output channel (else per tensor).
    quantize_output: end with an ActivationQuantizer (False when the next op
      quantizes, e.g. an Add fused with a ReLU).
    output_bits: of the output quantizer.
    freeze_bn_delay: training steps after which the BatchNormalization
      statistics stop updating and training uses the inference form; None:
      never.
    symmetric_output: the output quantizer's grid is symmetric (zero point 0).
  """

  def __init__(self, layer, batch_norm=None, activation="linear",
               use_bias=False, num_bits=8, per_channel=True,
               quantize_output=True, output_bits=8, freeze_bn_delay=None,
               symmetric_output=False, **kwargs):
    kwargs["autocast"] = False  # the kernel is folded in float32
    super().__init__(**kwargs)
    if type(layer) not in QUANTIZABLE_LAYERS:  # pylint: disable=unidiomatic-typecheck
      raise ValueError(f"QuantizedLayer: {type(layer).__name__} is not one of "
                       f"{sorted(t.__name__ for t in QUANTIZABLE_LAYERS)}.")
    if activation not in FUSED_ACTIVATIONS:
      raise ValueError(f"QuantizedLayer: activation must be one of "
                       f"{FUSED_ACTIVATIONS}, got {activation!r}.")
    if not 2 <= int(num_bits) <= 8:
      raise ValueError(f"QuantizedLayer: num_bits must be in [2, 8] (int8 "
                       f"weights), got {num_bits}.")
    if freeze_bn_delay is not None and int(freeze_bn_delay) < 0:
      raise ValueError(f"QuantizedLayer: freeze_bn_delay must be >= 0 or None, "
                       f"got {freeze_bn_delay}.")
    self.layer = layer
    self.batch_norm = batch_norm
    self.activation = activation
    self.use_bias = bool(use_bias)
    self.num_bits = int(num_bits)
    self.per_channel = bool(per_channel)
    self.quantize_output = bool(quantize_output)
    self.output_bits = int(output_bits)
    self.freeze_bn_delay = (None if freeze_bn_delay is None
                            else int(freeze_bn_delay))
    self.symmetric_output = bool(symmetric_output)
    self.output_quantizer = None
    if self.quantize_output:
      self.output_quantizer = ActivationQuantizer(
          num_bits=self.output_bits, name="output_quantizer",
          dtype=layer.dtype_policy, symmetric=self.symmetric_output,
          non_negative=activation in ("relu", "relu6"))

  def build(self, input_shape):
    if not self.layer.built:
      self.layer.build(input_shape)
    output_shape = self.layer.compute_output_shape(input_shape)
    channels = output_channels(self.layer)
    if self.use_bias:
      self.bias = self.add_weight(name="bias", shape=(channels,),
                                  initializer="zeros")
    if self.batch_norm is not None and not self.batch_norm.built:
      self.batch_norm.build(output_shape)
    if self.batch_norm is not None and self.freeze_bn_delay is not None:
      self.step = self.add_weight(name="step", shape=(), trainable=False,
                                  initializer="zeros", dtype="int64",
                                  aggregation="only_first_replica")
    if self.output_quantizer is not None:
      self.output_quantizer.build(output_shape)

  # The folded weights. Inference and export compute them with the same ops,
  # so the exported constants have the bits that the QAT model uses.

  def _bn_scale(self):
    """gamma / sqrt(moving_var + eps) per output channel (float32)."""
    bn = self.batch_norm
    std = tf.sqrt(tf.convert_to_tensor(bn.moving_variance) + bn.epsilon)
    gamma = tf.convert_to_tensor(bn.gamma) if bn.scale else tf.ones_like(std)
    return gamma / std

  def _bias_value(self):
    if self.use_bias:
      return tf.convert_to_tensor(self.bias)
    return tf.zeros([output_channels(self.layer)],
                    kernel_variable(self.layer).dtype)

  def folded_bias(self, scale=None):
    """The bias of the int8 op: beta + (b - moving_mean) * s with BN, else b.
    `scale`: s, when the caller has it."""
    bias = self._bias_value()
    bn = self.batch_norm
    if bn is None:
      return bias
    scale = self._bn_scale() if scale is None else scale
    shifted = (bias - tf.convert_to_tensor(bn.moving_mean)) * scale
    return (tf.convert_to_tensor(bn.beta) + shifted) if bn.center else shifted

  def quantized_kernel(self, scale=None):
    """(kernel on the weight grid with BN folded in, its per-channel L).
    `scale`: s, when the caller has it."""
    kernel = tf.convert_to_tensor(kernel_variable(self.layer))
    if self.batch_norm is not None:
      scale = self._bn_scale() if scale is None else scale
      kernel = kernel * _per_output_channel(self.layer, kernel, scale)
    return fake_quant_kernel(self.layer, kernel, self.num_bits,
                             self.per_channel)

  def _linear(self, inputs, kernel):
    with keras.StatelessScope(
        state_mapping=[(kernel_variable(self.layer), kernel)]):
      return self.layer(inputs)

  def call(self, inputs, training=None):
    state = _export_state()
    if state is not None:
      return self._export_call(inputs, state)
    scale = None if self.batch_norm is None else self._bn_scale()
    kernel, _ = self.quantized_kernel(scale)
    y = self._linear(inputs, kernel)
    if self.batch_norm is not None and training:
      if self.freeze_bn_delay is None:
        y = self._batch_statistics(y, scale)
      else:
        self.step.assign_add(1)
        y = tf.cond(self.step > self.freeze_bn_delay,
                    lambda: self._add_bias(y, self.folded_bias(scale)),
                    lambda: self._batch_statistics(y, scale))
    else:
      y = self._add_bias(y, self.folded_bias(scale))
    y = _apply_activation(y, self.activation)
    if self.output_quantizer is not None:
      y = self.output_quantizer(y, training=training)
    return y

  @staticmethod
  def _add_bias(y, bias):
    return y + tf.cast(bias, y.dtype)

  def _batch_statistics(self, y, scale):
    """Training with batch statistics: the BatchNormalization of
    u = y / s + b (y: the convolution with the folded kernel), with its
    moving statistics updated as Keras' layer updates them. Computed on y
    directly, with per-channel factors only, so that it costs what the float
    model's BatchNormalization costs:
      mean_u = mean_y / s + b,   var_u = var_y / s^2,
      BN(u) = y * f + (beta - mean_y * f),
      f = gamma / (s * sqrt(var_u + eps)) = |gamma| / sqrt(var_y + eps * s^2)
    (s has gamma's sign). With s = 0 (gamma = 0) the kernel is 0, y is 0 and
    BN(u) is beta, which f = 0 gives; s = 1 stands in for the update.
    """
    bn = self.batch_norm
    axes = list(range(len(y.shape) - 1))
    mean_y, var_y = keras.ops.moments(y, axes, synchronized=bn.synchronized)
    dtype = scale.dtype  # the variables' (float32, or float64 by policy)
    mean_y = tf.cast(mean_y, dtype)
    var_y = tf.cast(var_y, dtype)
    safe = tf.where(tf.equal(scale, 0.0), tf.ones_like(scale), scale)
    squared = safe * safe
    m = bn.momentum
    bn.moving_mean.assign(bn.moving_mean * m + (
        mean_y / safe + self._bias_value()) * (1.0 - m))
    bn.moving_variance.assign(bn.moving_variance * m + (
        var_y / squared) * (1.0 - m))
    gamma = tf.abs(bn.gamma) if bn.scale else 1.0
    factor = gamma * tf.math.rsqrt(var_y + bn.epsilon * squared)
    offset = -mean_y * factor
    if bn.center:
      offset = offset + tf.convert_to_tensor(bn.beta)
    return y * tf.cast(factor, y.dtype) + tf.cast(offset, y.dtype)

  def deployable_weights(self):
    """NumPy (kernel on the grid, bias, per-channel L): the constants of the
    int8 op, computed by the ops the inference graph runs."""
    with tf.init_scope():  # also while a tf.function is traced
      kernel, limit = self.quantized_kernel()
      return kernel.numpy(), self.folded_bias().numpy(), limit.numpy()

  def _export_call(self, inputs, state):
    kernel, bias, limit = self.deployable_weights()
    kernel = tf.constant(kernel)
    if self.name in state["fake_quant_weights"]:
      # Conv2D [h, w, in, out]: TFLite's converter reads per-channel ranges on
      # the last axis and keeps the narrower grid in int8 storage.
      kernel = tf.quantization.fake_quant_with_min_max_vars_per_channel(
          kernel, -limit * np.ones(kernel.shape[-1], np.float32),
          limit * np.ones(kernel.shape[-1], np.float32),
          num_bits=self.num_bits, narrow_range=True)
    y = self._add_bias(self._linear(inputs, kernel), tf.constant(bias))
    y = _apply_activation(y, self.activation)
    if self.output_quantizer is not None:
      y = self.output_quantizer(y, training=False)
    return y

  def compute_output_shape(self, input_shape):
    return self.layer.compute_output_shape(input_shape)

  def get_config(self):
    serialize = keras.saving.serialize_keras_object
    return {**super().get_config(),
            "layer": serialize(self.layer),
            "batch_norm": (None if self.batch_norm is None
                           else serialize(self.batch_norm)),
            "activation": self.activation, "use_bias": self.use_bias,
            "num_bits": self.num_bits, "per_channel": self.per_channel,
            "quantize_output": self.quantize_output,
            "output_bits": self.output_bits,
            "freeze_bn_delay": self.freeze_bn_delay,
            "symmetric_output": self.symmetric_output}

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    deserialize = keras.saving.deserialize_keras_object
    config["layer"] = deserialize(config["layer"],
                                  custom_objects=custom_objects)
    if config.get("batch_norm") is not None:
      config["batch_norm"] = deserialize(config["batch_norm"],
                                         custom_objects=custom_objects)
    return cls(**config)
