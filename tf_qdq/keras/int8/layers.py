"""QuantizedLayer, the weighted layer of the default QAT scheme ("int8"),
which simulates in float what TFLite's int8 runtime computes.

TFLite's int8 quantization spec, and how each part is simulated here:

* Weights: int8, symmetric (zero point 0), narrow range [-127, 127], one scale
  per output channel. `QuantizedLayer` fake-quantizes the kernels of a
  Conv/Dense layer with FakeQuantWithMinMaxVarsPerChannel on [-L, L],
  L = max|w| per output channel (narrow range), after folding the
  BatchNormalization that follows it into the last kernel. A layer with
  several kernels (SeparableConv2D) runs them as a chain of stages with an
  int8 tensor (an ActivationQuantizer) between each two, as TFLite runs the
  ops it becomes.
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

The activation quantizer is tf_qdq.keras.int8.activations, the graph rebuild
that puts these layers in place tf_qdq.keras.int8.rebuild, and which layer
types are quantized how tf_qdq.keras.registry. Export (tf_qdq.keras.export)
traces these layers in export mode (tf_qdq.keras.export_mode): every
quantity is then a constant and every op a TensorFlow built-in
(FakeQuantWithMinMaxVars with constant ranges, kernels already on the grid),
which is what TF's TFLite converter lowers to int8 and what a process without
tf_qdq can run.
"""
import keras
import numpy as np
import tensorflow as tf

from tf_qdq.keras import kernels as _kernels
from tf_qdq.keras import registry
from tf_qdq.keras.common import PACKAGE
from tf_qdq.keras.common import check_num_bits
from tf_qdq.keras.export_mode import export_state
from tf_qdq.keras.int8.activations import ActivationQuantizer
from tf_qdq.keras.int8.activations import apply_activation
from tf_qdq.keras.int8.activations import check_activation


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantizedLayer(keras.layers.Layer):
  """A Dense/Conv layer, the BatchNormalization it feeds (folded) and its
  fused activation, with fake-quantized kernels and an int8 output
  quantizer: one TFLite CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED /
  TRANSPOSE_CONV op, or the chain of them a layer with several kernels
  becomes (registry.LayerSupport.stages). See the module docstring for the
  folding.

  Args:
    layer: the Dense/Conv layer (a WEIGHTED entry of tf_qdq.keras.registry),
      with a linear activation and no bias (its bias, if any, is this
      layer's `bias`).
    batch_norm: the BatchNormalization (over the last axis) to fold, or None.
    activation: "linear", "relu" or "relu6", applied after the bias.
    use_bias: whether the original layer had a bias.
    num_bits: of the weight grid (8 for TFLite int8; 2..8).
    per_channel: one weight scale per output channel (else per tensor).
    quantize_output: end with an ActivationQuantizer (False when the next op
      quantizes, e.g. an Add fused with a ReLU).
    output_bits: of the output quantizer (and of those between stages).
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
    entry = registry.weighted(layer)
    if entry is None:
      raise ValueError(
          f"QuantizedLayer: {type(layer).__name__} is not one of "
          f"{sorted(t.__name__ for t in registry.weighted_types())} "
          "(tf_qdq.keras.registry).")
    check_activation(activation, "QuantizedLayer")
    check_num_bits("QuantizedLayer", num_bits, high=8, hint=" (int8 weights)")
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
    self._specs = entry.kernels
    self._rows_on_one_axis = entry.rows_on_one_axis
    self._stages = None if entry.stages is None else entry.stages(layer)
    if self._stages is not None:
      # The int8 tensors between the stages (e.g. the depthwise output of a
      # SeparableConv2D): what the runtime's first op writes.
      self.stage_quantizers = [
          ActivationQuantizer(num_bits=self.output_bits,
                              name=f"stage_{i}_quantizer",
                              dtype=layer.dtype_policy,
                              symmetric=self.symmetric_output)
          for i in range(len(self._stages) - 1)]
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
    channels = _kernels.output_channels(self.layer)
    if self.use_bias:
      self.bias = self.add_weight(name="bias", shape=(channels,),
                                  initializer="zeros")
    if self.batch_norm is not None and not self.batch_norm.built:
      self.batch_norm.build(output_shape)
    if self.batch_norm is not None and self.freeze_bn_delay is not None:
      self.step = self.add_weight(name="step", shape=(), trainable=False,
                                  initializer="zeros", dtype="int64",
                                  aggregation="only_first_replica")
    for quantizer in getattr(self, "stage_quantizers", ()):
      quantizer.build(None)
    if self.output_quantizer is not None:
      self.output_quantizer.build(output_shape)

  def kernel_variables(self):
    """The wrapped layer's kernels, in the registry's order."""
    return [_kernels.kernel_variable(self.layer, spec) for spec in self._specs]

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
    return tf.zeros([_kernels.output_channels(self.layer)],
                    self.kernel_variables()[-1].dtype)

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

  def quantized_kernels(self, scale=None):
    """[(kernel on the weight grid, its per-channel L)], one per kernel, with
    the BatchNormalization folded into the last. `scale`: s, when the caller
    has it."""
    result = []
    last = len(self._specs) - 1
    for i, (spec, variable) in enumerate(zip(self._specs,
                                             self.kernel_variables())):
      kernel = tf.convert_to_tensor(variable)
      if i == last and self.batch_norm is not None:
        scale = self._bn_scale() if scale is None else scale
        kernel = kernel * _kernels.per_output_channel(spec, kernel, scale)
      result.append(_kernels.fake_quant_kernel(spec, kernel, self.num_bits,
                                               self.per_channel))
    return result

  def quantized_kernel(self, scale=None):
    """(kernel, L) of the last kernel, the one the BatchNormalization folds
    into (the only one but for layers with stages)."""
    return self.quantized_kernels(scale)[-1]

  def _linear(self, inputs, kernels, training=None):
    """The layer's linear part with `kernels` in place of its variables."""
    if self._stages is None:
      with keras.StatelessScope(
          state_mapping=list(zip(self.kernel_variables(), kernels))):
        return self.layer(inputs)
    y = tf.cast(inputs, self.layer.compute_dtype)
    for i, (stage, kernel) in enumerate(zip(self._stages, kernels)):
      if i:
        y = self.stage_quantizers[i - 1](y, training=training)
      y = stage(y, tf.cast(kernel, y.dtype))
    return y

  def call(self, inputs, training=None):
    state = export_state()
    if state is not None:
      return self._export_call(inputs, state)
    scale = None if self.batch_norm is None else self._bn_scale()
    kernels = [k for k, _ in self.quantized_kernels(scale)]
    y = self._linear(inputs, kernels, training)
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
    if self.output_quantizer is not None:
      # The quantizer applies the activation: in a training step, fused
      # into its kernel (a pass over y saved each way).
      return self.output_quantizer(y, training=training,
                                   activation=self.activation)
    return apply_activation(y, self.activation)

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
    """NumPy ([(kernel on the grid, per-channel L)], bias): the constants of
    the int8 op(s), computed by the ops the inference graph runs."""
    with tf.init_scope():  # also while a tf.function is traced
      kernels = [(k.numpy(), limit.numpy())
                 for k, limit in self.quantized_kernels()]
      return kernels, self.folded_bias().numpy()

  def _export_call(self, inputs, state):
    kernels, bias = self.deployable_weights()
    constants = []
    for spec, (kernel, limit) in zip(self._specs, kernels):
      kernel = tf.constant(kernel)
      if (self.name, spec.attribute) in state.fake_quant_weights:
        # [..., out] (CONV_2D): TFLite's converter reads per-channel ranges
        # on the last axis and keeps the narrower grid in int8 storage.
        channels = kernel.shape[-1]
        kernel = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            kernel, -limit * np.ones(channels, np.float32),
            limit * np.ones(channels, np.float32),
            num_bits=self.num_bits, narrow_range=True)
      constants.append(kernel)
    # A Dense on a rank > 2 input (ConvNeXt's pointwise layers, a
    # transformer's feed-forward) runs as a tensordot: RESHAPE, MatMul,
    # RESHAPE, then the bias. TFLite's converter fuses a bias (and the
    # activation) into FULLY_CONNECTED only when the add follows the MatMul,
    # so the export flattens the rows first: the same products, sums and
    # bias, elementwise the same, in the order the converter fuses.
    leading = inputs.shape[1:-1]
    flatten = self._rows_on_one_axis and len(inputs.shape) > 2
    x = tf.reshape(inputs, [-1, inputs.shape[-1]]) if flatten else inputs
    y = self._add_bias(self._linear(x, constants, training=False),
                       tf.constant(bias))
    y = apply_activation(y, self.activation)
    if self.output_quantizer is not None:
      y = self.output_quantizer(y, training=False)
    if flatten:
      shape = ([-1, *leading, y.shape[-1]] if None not in leading else
               tf.concat([tf.shape(inputs)[:-1], tf.shape(y)[-1:]], 0))
      y = tf.reshape(y, shape)
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
