"""The "symmetric_qdq" scheme of `quantize_model` (the scheme of tf-qdq 0.1).

`QuantizeWrapper` and `quantize_model_symmetric_qdq`: Dense, Conv1D/2D/3D,
DepthwiseConv2D and Conv2DTranspose (the registry's weighted entries that name
this scheme) get fake-quantized kernels (per output channel, symmetric, narrow
range, the range taken from the kernel at every step like tfmot's
LastValueQuantizer) and a moving-average QuantizeDequantize on their outputs.
It simulates no particular runtime; the default scheme (tf_qdq.keras.int8)
simulates TFLite's int8 one.
"""
import logging

import keras
import tensorflow as tf

from tf_qdq.keras import kernels as _kernels
from tf_qdq.keras import registry
from tf_qdq.keras.common import PACKAGE
from tf_qdq.keras.common import check_num_bits
from tf_qdq.keras.layers import QuantizeDequantize

__all__ = ["QuantizeWrapper", "quantize_model_symmetric_qdq"]

_logger = logging.getLogger("tf_qdq.keras")

_SCHEME = "symmetric_qdq"

# Activations whose outputs are never negative: their outputs use the unsigned
# grid (one more bit of resolution).
_NON_NEGATIVE_ACTIVATIONS = frozenset((
    "relu", "relu6", "sigmoid", "hard_sigmoid", "softmax", "softplus",
    "exponential"))



@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantizeWrapper(keras.layers.Wrapper):
  """Runs a Dense/Conv layer with a fake-quantized kernel and quantizes its
  output: what `quantize_model` puts in place of each supported layer.

  The kernel is fake-quantized with FakeQuantWithMinMaxVars(PerChannel), per
  output channel (or per tensor), symmetric ([-max|w|, max|w|] of the current
  kernel, recomputed at every step) and narrow range, so 0 stays exact and the
  grid is symmetric. The output goes through a moving-average
  QuantizeDequantize (unsigned after ReLU-like activations).
  """

  def __init__(self, layer, num_bits=8, per_channel=True, quantize_output=True,
               output_signed=None, **kwargs):
    kwargs["autocast"] = False  # quantize the float32 master kernel
    super().__init__(layer, **kwargs)
    if registry.weighted(layer, _SCHEME) is None:
      supported = registry.weighted_types(_SCHEME)
      raise ValueError(f"QuantizeWrapper: {type(layer).__name__} is not one of "
                       f"{sorted(t.__name__ for t in supported)}.")
    self.num_bits = int(num_bits)
    self.per_channel = bool(per_channel)
    self.quantize_output = bool(quantize_output)
    if output_signed is None:  # built-in activations serialize to their name
      activation = keras.activations.serialize(layer.activation)
      output_signed = not (isinstance(activation, str) and
                           activation in _NON_NEGATIVE_ACTIVATIONS)
    self.output_signed = bool(output_signed)
    self.output_quantizer = None
    if self.quantize_output:
      self.output_quantizer = QuantizeDequantize(
          num_bits=self.num_bits, signed=self.output_signed,
          range_mode="moving_average", dtype=layer.dtype_policy,
          name="output_quantizer")

  def build(self, input_shape):
    super().build(input_shape)
    if self.output_quantizer is not None:
      self.output_quantizer.build(self.layer.compute_output_shape(input_shape))

  def quantized_kernels(self):
    """The fake-quantized kernels (in the variable dtype), in the registry's
    order."""
    specs = _kernels.kernel_specs(self.layer)
    return [_kernels.fake_quant_kernel(
        spec, tf.convert_to_tensor(_kernels.kernel_variable(self.layer, spec)),
        self.num_bits, self.per_channel)[0] for spec in specs]

  def quantized_kernel(self):
    """The fake-quantized kernel of a one-kernel layer."""
    return self.quantized_kernels()[-1]

  def call(self, inputs, training=None):
    mapping = zip(_kernels.kernel_variables(self.layer),
                  self.quantized_kernels())
    with keras.StatelessScope(state_mapping=list(mapping)):
      outputs = self.layer(inputs)
    if self.output_quantizer is not None:
      outputs = self.output_quantizer(outputs, training=training)
    return outputs

  def compute_output_shape(self, input_shape):
    return self.layer.compute_output_shape(input_shape)

  @classmethod
  def from_config(cls, config, custom_objects=None):
    # keras.layers.Wrapper.from_config pops "layer" from the caller's dict.
    return super().from_config(dict(config), custom_objects=custom_objects)

  def get_config(self):
    return {**super().get_config(), "num_bits": self.num_bits,
            "per_channel": self.per_channel,
            "quantize_output": self.quantize_output,
            "output_signed": self.output_signed}


def _why_not_quantizable(layer):
  if registry.weighted(layer, _SCHEME) is None:
    return None if not layer.weights else "not a supported layer type"
  if getattr(layer, "lora_enabled", False):
    return "LoRA is enabled"
  if getattr(layer, "quantization_mode", None):
    return f"already quantized ({layer.quantization_mode})"
  return ""


def quantize_model_symmetric_qdq(model, num_bits=8, per_channel_weights=True,
                                 verbose=True):
  """Returns a quantization-aware-training copy of `model`.

  Dense, Conv1D, Conv2D, Conv3D, DepthwiseConv2D and Conv2DTranspose layers
  (exactly these classes: tf_qdq.keras.registry) are wrapped in
  `QuantizeWrapper`: fake-quantized kernels (per output channel with
  `per_channel_weights`, else per tensor) and a moving-average
  QuantizeDequantize on their outputs, both at `num_bits`.
  Every other layer is copied as it is; nested Sequential and functional
  models are copied the same way, layer by layer. The copy starts from the
  original weights; the original model is not modified.

  The returned model has `quantized_layers` and `unquantized_layers` (tuples
  of layer names of the original model); with `verbose`, the layers left alone
  are printed, those with weights first.

  Args:
    model: a built Sequential or functional keras.Model.
    num_bits: 2..16 for the kernels (and the outputs).
    per_channel_weights: one kernel range per output channel.
    verbose: print which layers were left alone.

  tf_qdq.keras.quantize_model has checked that `model` is a built Model.
  """
  num_bits = check_num_bits("quantize_model", num_bits,
                            hint=" for scheme='symmetric_qdq'")
  originals = {}
  quantized, left_alone = [], []

  def clone(layer):
    config = layer.get_config()
    copy = layer.__class__.from_config(config)
    reason = _why_not_quantizable(layer)
    if reason == "":
      wrapper = QuantizeWrapper(copy, num_bits=num_bits,
                                per_channel=per_channel_weights,
                                dtype=layer.dtype_policy,
                                name=f"quant_{layer.name}")
      originals[id(wrapper)] = layer
      quantized.append(layer.name)
      return wrapper
    originals[id(copy)] = layer
    left_alone.append((layer.name, type(layer).__name__, reason))
    return copy

  # Nested Sequential/functional models are cloned (and quantized) too.
  qat = keras.models.clone_model(model, clone_function=clone, recursive=True)

  def cloned_layers(container):
    for layer in container.layers:
      if id(layer) in originals:
        yield layer
      elif isinstance(layer, keras.Model):
        yield from cloned_layers(layer)

  for layer in cloned_layers(qat):
    target = layer.layer if isinstance(layer, QuantizeWrapper) else layer
    target.set_weights(originals[id(layer)].get_weights())
  qat.quantized_layers = tuple(quantized)
  qat.unquantized_layers = tuple(name for name, _, _ in left_alone)
  with_weights = [f"{n} ({t}: {r})" for n, t, r in left_alone if r]
  without = [f"{n} ({t})" for n, t, r in left_alone if not r]
  message = (f"tf_qdq.keras.quantize_model: quantized {len(quantized)} layers "
             f"at {num_bits} bits: {', '.join(quantized) or 'none'}.")
  if with_weights:
    message += ("\n  left alone, WITH weights (not quantized): "
                + ", ".join(with_weights))
  if without:
    message += "\n  left alone, no weights: " + ", ".join(without)
  _logger.info(message)
  if verbose:
    print(message)
  return qat
