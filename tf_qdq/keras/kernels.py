"""The kernels of weighted layers: which variables they are, their output
channels, and the symmetric per-channel grid both quantize_model schemes put
them on. The layout of each kernel (its output-channel axes) comes from
tf_qdq.keras.registry."""
import math

import tensorflow as tf

from tf_qdq import quantization as _q
from tf_qdq.keras import registry


def kernel_specs(layer):
  """The registry's Kernels of a weighted layer (ValueError for others)."""
  entry = registry.support_for(layer)
  if entry.role != registry.WEIGHTED:
    raise ValueError(f"{type(layer).__name__} has no kernel tf_qdq quantizes "
                     f"({entry.reason or entry.role}).")
  return entry.kernels


def kernel_variable(layer, spec):
  """The variable of `spec` in `layer` (Dense keeps it as `_kernel` behind a
  `kernel` property)."""
  variable = getattr(layer, "_" + spec.attribute, None)
  return getattr(layer, spec.attribute) if variable is None else variable


def kernel_variables(layer):
  return [kernel_variable(layer, spec) for spec in kernel_specs(layer)]


def _axes(spec, rank):
  return sorted(a % rank for a in spec.output_axes)


def channels(spec, kernel):
  """The number of output channels of `kernel`."""
  return math.prod(kernel.shape[a] for a in _axes(spec, len(kernel.shape)))


def output_channels(layer):
  """The layer's output channels: those of its last kernel."""
  spec = kernel_specs(layer)[-1]
  return channels(spec, kernel_variable(layer, spec))


def per_output_channel(spec, kernel, v):
  """v (one value per output channel) shaped to broadcast against kernel."""
  axes = _axes(spec, len(kernel.shape))
  shape = [kernel.shape[a] if a in axes else 1
           for a in range(axes[0], len(kernel.shape))]
  return v if len(shape) == 1 else tf.reshape(v, shape)


def _as_matrix(spec, kernel):
  """`kernel` as [taps, output channels], and the function that puts such a
  matrix back into the kernel's layout."""
  shape = kernel.shape
  rank = len(shape)
  axes = _axes(spec, rank)
  if axes == list(range(rank - len(axes), rank)):  # trailing: a reshape
    return (tf.reshape(kernel, [-1, channels(spec, kernel)]),
            lambda m: tf.reshape(m, shape))
  perm = [a for a in range(rank) if a not in axes] + axes
  inverse = [perm.index(a) for a in range(rank)]
  w = tf.transpose(kernel, perm)
  moved = w.shape
  return (tf.reshape(w, [-1, channels(spec, kernel)]),
          lambda m: tf.transpose(tf.reshape(m, moved), inverse))


def fake_quant_kernel(spec, kernel, num_bits, per_channel):
  """`kernel` fake-quantized on a symmetric, narrow-range grid ([-L, L] with
  L = max|w| per output channel, or of the whole kernel): 0 stays exact and
  the integers are [-(2^(b-1) - 1), 2^(b-1) - 1], TFLite's int8 weight grid
  at 8 bits. Returns the kernel and L (no gradient flows into L)."""
  w, back = _as_matrix(spec, kernel)
  if per_channel:
    limit = tf.reduce_max(tf.abs(w), axis=0)
    q = _q.fake_quant_with_min_max_vars_per_channel
  else:
    limit = tf.reduce_max(tf.abs(w))
    q = _q.fake_quant_with_min_max_vars
  limit = tf.stop_gradient(limit)
  return back(q(w, -limit, limit, num_bits=num_bits, narrow_range=True)), limit
