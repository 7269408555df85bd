"""QuantizeAndDequantize V4, V4Grad and the legacy straight-through variant
as compositions of TF built-ins, for XLA (math.h, cc/core/quantize_math.h:
ComputeQdqScale, QuantizeDequantize).

HALF_TO_EVEN is tf.math.round (XLA RoundNearestEven, = rint) and HALF_UP is
floor(y + 0.5); a range computed from the data skips NaNs, and a zero maximum
(its sign decides the sign of zero outputs) is +0 when the data hold a +0.
"""
import numpy as np
import tensorflow as tf

from tf_qdq import _core
from tf_qdq._xla.checks import check_int32
from tf_qdq._xla.checks import convert_inputs
from tf_qdq._xla.checks import enforce
from tf_qdq._xla.checks import invalid
from tf_qdq._xla.checks import rank_of
from tf_qdq._xla.checks import shape_of
from tf_qdq._xla.common import compute_dtype
from tf_qdq._xla.common import const
from tf_qdq._xla.common import max_prefer_left
from tf_qdq._xla.common import min_prefer_left
from tf_qdq._xla.common import no_autograph
from tf_qdq._xla.common import opaque
from tf_qdq._xla.common import separately_rounded
from tf_qdq._xla.common import signbit
from tf_qdq._xla.common import store
from tf_qdq._xla.common import to_compute


def _qdq_bounds(signed_input, num_bits, narrow_range):
  if signed_input:
    half_range = 1 << (num_bits - 1)
    return (-half_range + 1 if narrow_range else -half_range), half_range - 1
  return 0, (1 << num_bits) - 1


def _channel_view(x, axis):
  """x as [outer, depth, inner] around `axis` (dynamic shapes allowed)."""
  shape = tf.shape(x)
  return tf.reshape(x, tf.stack([tf.reduce_prod(shape[:axis]), shape[axis],
                                 tf.reduce_prod(shape[axis + 1:])]))


def _with_zero_sign(mx, values, axis):
  """A zero maximum is +0 when the data hold a +0, else -0 (math.h RunningMax
  merges equal values by their bits, whatever the scan order). The sign of a
  zero minimum never reaches a QDQ output."""
  positive_zero = tf.reduce_any(tf.equal(values, 0) & ~signbit(values),
                                axis=axis)
  zero = tf.where(positive_zero, tf.zeros_like(mx),
                  tf.constant(-0.0, mx.dtype))
  return tf.where(tf.equal(mx, 0), zero, mx)


def _data_range(xc, axis):
  """Per-tensor (axis -1) or per-channel min/max of the data, NaNs skipped."""
  inf = tf.constant(np.inf, xc.dtype)
  if axis == -1:
    values, reduce_axes = xc, None
  else:
    values = _channel_view(xc, axis)
    reduce_axes = [0, 2]
  nan = tf.math.is_nan(values)
  mn = tf.reduce_min(tf.where(nan, inf, values), axis=reduce_axes)
  mx = tf.reduce_max(tf.where(nan, -inf, values), axis=reduce_axes)
  return mn, _with_zero_sign(mx, values, reduce_axes)


def _broadcast_channel(v, x, axis):
  """A per-channel vector shaped to broadcast against x."""
  if axis == -1:
    return v
  if rank_of(x) is None:  # [depth, 1, ...] of x's rank, known when XLA compiles
    return tf.reshape(v, tf.concat(
        [[-1], tf.ones([tf.rank(x) - axis - 1], tf.int32)], 0))
  return tf.reshape(v, [-1] + [1] * (rank_of(x) - axis - 1))


def _qdq_forward(x, input_min, input_max, signed_input, num_bits, range_given,
                 round_mode, narrow_range, axis):
  c = compute_dtype(x.dtype)
  xc = to_compute(x)
  qmin, qmax = _qdq_bounds(signed_input, num_bits, narrow_range)
  qmin_c, qmax_c = const(qmin, c), const(qmax, c)
  if range_given:
    mins, maxs = to_compute(input_min), to_compute(input_max)
  else:
    mins, maxs = _data_range(xc, axis)
  largest = const(np.finfo(c.as_numpy_dtype).max, c)
  mins, maxs, qmin_div, qmax_div = opaque(mins, maxs, qmin_c, qmax_c)
  scale_from_min = tf.where(qmin_c * mins > 0, qmin_c / mins, largest)
  scale_from_max = tf.where(qmax_c * maxs > 0, qmax_c / maxs, largest)
  from_min = scale_from_min < scale_from_max
  scale = tf.where(from_min, scale_from_min, scale_from_max)
  inverse_scale = tf.where(from_min, mins / qmin_div, maxs / qmax_div)
  min_range = tf.where(from_min, mins, qmin_c * inverse_scale)
  max_range = tf.where(from_min, qmax_c * inverse_scale, maxs)
  scale, inverse_scale, min_range, max_range = (
      _broadcast_channel(t, xc, axis) for t in opaque(
          scale, inverse_scale, min_range, max_range))
  if range_given:
    xc = max_prefer_left(min_prefer_left(xc, max_range), min_range)
  y = xc * scale
  if round_mode == "HALF_TO_EVEN":
    rounded = tf.math.round(y)
  else:
    rounded = separately_rounded(y, lambda p: tf.floor(p + 0.5))
  return store(rounded * inverse_scale, x.dtype)


def _qdq_gradient(gradients, x, input_min, input_max, axis):
  c = compute_dtype(x.dtype)
  xc = to_compute(x)
  lo = _broadcast_channel(to_compute(input_min), xc, axis)
  hi = _broadcast_channel(to_compute(input_max), xc, axis)
  in_range = opaque(tf.cast((xc >= lo) & (xc <= hi), c))
  return store(to_compute(gradients) * in_range, x.dtype)


@no_autograph
def quantize_and_dequantize_v4(input, input_min, input_max, signed_input,  # pylint: disable=redefined-builtin
                               num_bits, range_given, round_mode,
                               narrow_range, axis, name=None):
  """QuantizeAndDequantizeV4 for XLA, with tf-qdq's gradient. The attrs are
  normalised (tf_qdq.quantization)."""
  if round_mode not in ("HALF_TO_EVEN", "HALF_UP"):
    raise invalid(f"Value for attr 'round_mode' of \"{round_mode}\" is not in "
                  'the list of allowed values: "HALF_TO_EVEN", "HALF_UP"')
  check_int32(axis, "axis")
  check_int32(num_bits, "num_bits")
  with tf.name_scope(name or "QuantizeAndDequantizeV4"):
    x, mn, mx = convert_inputs("QuantizeAndDequantizeV4", input, input_min,
                               input_max)
    x, mn, mx = enforce(_core.check_quantize_and_dequantize_v4(
        [shape_of(x), shape_of(mn), shape_of(mx)], bool(signed_input),
        num_bits, bool(range_given), round_mode, bool(narrow_range), axis),
                        x, mn, mx)

    @tf.custom_gradient
    def qdq(x, mn, mx):
      y = _qdq_forward(x, mn, mx, signed_input, num_bits, range_given,
                       round_mode, narrow_range, axis)

      def grad(dy):
        if not range_given:  # the range came from the data: identity
          return dy, tf.zeros_like(mn), tf.zeros_like(mx)
        return (_qdq_gradient(dy, x, mn, mx, axis), tf.zeros_like(mn),
                tf.zeros_like(mx))

      return y, grad

    return qdq(x, mn, mx)


@no_autograph
def quantize_and_dequantize_v2(input, input_min, input_max, signed_input,  # pylint: disable=redefined-builtin
                               num_bits, range_given, round_mode,
                               narrow_range, axis, name=None):
  """The custom QuantizeAndDequantizeV2 op for XLA (tf_qdq's legacy
  quantize_and_dequantize): V4's composition with a straight-through gradient,
  the identity w.r.t. `input` and nothing for the range."""
  return tf.grad_pass_through(
      lambda x: quantize_and_dequantize_v4(x, input_min, input_max,
                                           signed_input, num_bits, range_given,
                                           round_mode, narrow_range, axis,
                                           name))(input)


@no_autograph
def quantize_and_dequantize_v4_grad(gradients, input, input_min, input_max,  # pylint: disable=redefined-builtin
                                    axis, name=None):
  """QuantizeAndDequantizeV4Grad for XLA."""
  check_int32(axis, "axis")
  with tf.name_scope(name or "QuantizeAndDequantizeV4Grad"):
    g, x, mn, mx = convert_inputs("QuantizeAndDequantizeV4Grad", gradients,
                                  input, input_min, input_max)
    g, x, mn, mx = enforce(_core.check_quantize_and_dequantize_v4_grad(
        [shape_of(t) for t in (g, x, mn, mx)], axis), g, x, mn, mx)

    @tf.custom_gradient
    def qdq_grad(g, x, mn, mx):
      zeros = tf.zeros_like(mn)
      outputs = (_qdq_gradient(g, x, mn, mx, axis), zeros, zeros)

      def grad(d_input, *_):  # linear in g; zero w.r.t. the rest
        return (_qdq_gradient(d_input, x, mn, mx, axis), tf.zeros_like(x),
                tf.zeros_like(mn), tf.zeros_like(mx))

      return outputs, grad

    return qdq_grad(g, x, mn, mx)
