"""The export mode: what the int8 layers trace as while an exporter traces
the model.

Outside it, ActivationQuantizer and QuantizedLayer run tf-qdq's ops on
variables (training, inference). Inside `exporting()`, which
tf_qdq.keras.export.trace enters around the one trace each exporter makes,
they build the graph a deployment runtime gets: every range and every
(BN-folded, quantized) kernel is a constant, and every quantizer is TF's own
FakeQuantWithMinMaxVars (`builtin_fake_quant`), which TF's TFLite converter
lowers to int8 and tf2onnx to QuantizeLinear/DequantizeLinear, and which a
process without tf_qdq can run.

The mode is thread-local, so a model can train in one thread while another
exports it.
"""
import contextlib
import threading

import tensorflow as tf

from tf_qdq import _xla

_STATE = threading.local()


class ExportState:
  """What an exporter asks of the layers.

  fake_quant_weights: (QuantizedLayer name, kernel attribute) pairs whose
    constant kernel is also wrapped in FakeQuantWithMinMaxVarsPerChannel, so
    that TFLite's converter keeps a grid narrower than 8 bits.
  simulates_kernels: the runtime computes in float what an int8 kernel
    computes in integers and only rounds at the next quantizer: TensorFlow
    itself (the stock SavedModel) and ONNX (a float AveragePool or Resize
    between DequantizeLinear and QuantizeLinear, which rounds halves to
    even). So what the QAT model simulates of TFLite's int8 kernels beyond
    FakeQuant (the ties an average pooling or resize rounds away from zero)
    is traced too. LiteRT rounds in its own int8 kernels and gets none of
    it.
  """

  def __init__(self, fake_quant_weights=(), simulates_kernels=False):
    self.fake_quant_weights = frozenset(fake_quant_weights)
    self.simulates_kernels = bool(simulates_kernels)


@contextlib.contextmanager
def exporting(fake_quant_weights=(), simulates_kernels=False):
  """Within it, the int8 layers trace as TensorFlow built-ins with constant
  ranges and constant quantized kernels (see the module docstring)."""
  previous = getattr(_STATE, "state", None)
  _STATE.state = ExportState(fake_quant_weights, simulates_kernels)
  try:
    yield _STATE.state
  finally:
    _STATE.state = previous


def export_state():
  """The ExportState while an exporter traces, else None."""
  return getattr(_STATE, "state", None)


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
