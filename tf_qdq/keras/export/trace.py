"""What every exporter shares: the checks that a model belongs to the int8
scheme, and the one trace of it in export mode (tf_qdq.keras.export_mode),
whose graph each converter reads."""
import warnings

import tensorflow as tf

from tf_qdq.keras.export_mode import exporting
from tf_qdq.keras.int8.activations import ActivationQuantizer
from tf_qdq.keras.layers import FakeQuant
from tf_qdq.keras.layers import QuantizeDequantize
from tf_qdq.keras.symmetric_qdq import QuantizeWrapper


def all_layers(model):
  """Every layer of `model`, nested models' included."""
  for layer in model._flatten_layers(include_self=False, recursive=True):  # pylint: disable=protected-access
    yield layer


def check_int8_scheme(model, format):  # pylint: disable=redefined-builtin
  legacy = [layer.name for layer in all_layers(model) if isinstance(
      layer, (FakeQuant, QuantizeDequantize, QuantizeWrapper))]
  if legacy:
    raise ValueError(
        f"tf_qdq.keras.export(format={format!r}): layers {legacy} belong to "
        "the 'symmetric_qdq' scheme (or are raw FakeQuant/QuantizeDequantize "
        "layers), which no int8 runtime computes. Quantize the float model "
        "with tf_qdq.keras.quantize_model(model) (scheme='int8') and train "
        "that copy.")
  quantizers = [layer for layer in all_layers(model)
                if isinstance(layer, ActivationQuantizer)]
  if not quantizers:
    raise ValueError(
        f"tf_qdq.keras.export(format={format!r}): the model has no "
        "tf_qdq quantizer; make a QAT copy with "
        "tf_qdq.keras.quantize_model(model) first.")
  if format != "tf_saved_model":
    ranges = [(q.name, q.range()) for q in quantizers]
    empty = [f"{name} {r}" for name, r in ranges if not r[1] > r[0]]
    if empty:
      raise ValueError(
          f"tf_qdq.keras.export(format={format!r}): quantizers with an empty "
          f"range: {', '.join(empty)}. An int8 tensor needs a scale > 0; the "
          "layer before saw only zeros in training (a dead ReLU?). Train on "
          "real data, or give that quantizer a range (init_min/init_max).")
  stale = [q.name for q in quantizers if not q.is_calibrated]
  if stale:
    warnings.warn(
        f"tf_qdq.keras.export: activation quantizers {stale} have seen no "
        "training batch and still hold their initial range; train (fit) the "
        "QAT model before exporting it.", stacklevel=3)


def input_signature_of(model, input_signature):
  if input_signature is not None:
    return input_signature
  return [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]


def concrete_function(model, input_signature, fake_quant_weights=(),
                      simulates_kernels=False):
  """The model's inference function (a tf.function) and its concrete
  function, traced once in export mode. `fake_quant_weights`,
  `simulates_kernels`: see tf_qdq.keras.export_mode.ExportState."""
  signature = input_signature_of(model, input_signature)

  @tf.function(input_signature=signature, autograph=False)
  def serve(*inputs):
    return model(inputs[0] if len(inputs) == 1 else list(inputs),
                 training=False)

  with exporting(fake_quant_weights, simulates_kernels):
    return serve, serve.get_concrete_function()
