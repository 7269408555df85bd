"""The FakeQuant ops (Args, Vars, PerChannel, with their gradients) as
compositions of TF built-ins, for XLA (math.h, cc/core/quantize_math.h:
NudgeFakeQuantRange, FakeQuantize, FakeQuantGradient).

FakeQuant rounds with floor(y + 0.5) and its zero point half away from zero
(std::round), written exactly with floor; Vars divides by the scale, Args and
PerChannel multiply by its inverse. The min/max backprops are the canonical
double sums of tf_qdq._xla.sums.
"""
import tensorflow as tf

from tf_qdq import _core
from tf_qdq._xla.checks import check_int32
from tf_qdq._xla.checks import convert_inputs
from tf_qdq._xla.checks import enforce
from tf_qdq._xla.checks import shape_of
from tf_qdq._xla.common import compute_dtype
from tf_qdq._xla.common import const
from tf_qdq._xla.common import max_prefer_left
from tf_qdq._xla.common import min_prefer_left
from tf_qdq._xla.common import no_autograph
from tf_qdq._xla.common import opaque
from tf_qdq._xla.common import separately_rounded
from tf_qdq._xla.common import store
from tf_qdq._xla.common import to_compute
from tf_qdq._xla.sums import column_sums
from tf_qdq._xla.sums import flat_sums
from tf_qdq._xla.sums import store_double
from tf_qdq.core import flushed_float32


def _enforce(op_name, gradient, tensors, num_bits, min=0.0, max=0.0):  # pylint: disable=redefined-builtin
  """The op's contract (cc/core/contract/fake_quant.h) on `tensors`, its
  converted inputs; returns them with the deferred checks attached."""
  check_int32(num_bits, "num_bits")
  return enforce(_core.check_fake_quant(
      op_name, gradient, [shape_of(t) for t in tensors], num_bits, min, max,
      node_name=op_name + ("Gradient" if gradient else "")), *tensors)


class _Nudged:
  """math.h NudgeFakeQuantRange on min/max of the compute type (scalars or
  per-channel vectors)."""

  def __init__(self, mn, mx, num_bits, narrow_range):
    c = mn.dtype
    quant_min = 1 if narrow_range else 0
    quant_max = (1 << num_bits) - 1
    qmin, qmax = const(quant_min, c), const(quant_max, c)
    # Opaque inputs: no constant folding; opaque quotients: XLA rewrites
    # A / (B / C) as (A * C) / B.
    mn, mx, span = opaque(mn, mx, const(quant_max - quant_min, c))
    self.zero_range = tf.equal(mn, 0) & tf.equal(mx, 0)
    scale = opaque((mx - mn) / span)
    inverse_scale = span / (mx - mn)
    zero_point_from_min = qmin - mn / scale
    floor = tf.floor(zero_point_from_min)  # std::round of a value >= 0:
    rounded = tf.where(zero_point_from_min - floor >= 0.5, floor + 1, floor)
    zero_point = tf.where(
        zero_point_from_min < qmin, qmin,
        tf.where(zero_point_from_min > qmax, qmax,
                 tf.where(tf.math.is_nan(zero_point_from_min),
                          tf.zeros_like(rounded), rounded)))
    nudged_min = (qmin - zero_point) * scale
    nudged_max = (qmax - zero_point) * scale
    quant_zero = separately_rounded(-nudged_min * inverse_scale,
                                    lambda p: tf.floor(p + 0.5))
    (self.scale, self.inverse_scale, self.nudged_min, self.nudged_max,
     self.quant_zero) = opaque(scale, inverse_scale, nudged_min, nudged_max,
                               quant_zero)


def _fake_quantize(xc, n, divide):
  clamped = max_prefer_left(min_prefer_left(xc, n.nudged_max), n.nudged_min)
  shifted = clamped - n.nudged_min
  step = lambda t: tf.floor((t - n.quant_zero) + 0.5)
  if divide:
    on_grid = step(shifted / n.scale)
  else:
    on_grid = separately_rounded(shifted * n.inverse_scale, step)
  return on_grid * n.scale


def _fake_quant_forward(x, mn, mx, num_bits, narrow_range, divide,
                        zero_range_rule):
  n = _Nudged(to_compute(mn), to_compute(mx), num_bits, narrow_range)
  out = _fake_quantize(to_compute(x), n, divide)
  if zero_range_rule:
    out = tf.where(n.zero_range, tf.zeros_like(out), out)
  return store(out, x.dtype)


def _fake_quant_masks(x, n):
  """(between, below, above) as 0/1 of the compute type."""
  c = n.scale.dtype
  xc = to_compute(x)
  between = tf.cast((xc >= n.nudged_min) & (xc <= n.nudged_max), c)
  below = tf.cast(xc < n.nudged_min, c)
  above = tf.cast(xc > n.nudged_max, c)
  return opaque(between, below, above)


def _fake_quant_gradient(gradients, x, mn, mx, num_bits, narrow_range, sums):
  """(wrt_input,) for Args, (wrt_input, wrt_min, wrt_max) for Vars (sums
  "flat") and PerChannel (sums "columns")."""
  n = _Nudged(to_compute(mn), to_compute(mx), num_bits, narrow_range)
  g = to_compute(gradients)
  between, below, above = _fake_quant_masks(x, n)
  wrt_input = store(g * between, x.dtype)
  if sums is None:
    return (wrt_input,)
  wrt_input = tf.where(n.zero_range, gradients, wrt_input)  # a plain copy
  zero = tf.zeros_like(g)
  terms = tf.stack([tf.where(n.zero_range, zero, g * below),
                    tf.where(n.zero_range, zero, g * above)])
  terms = tf.cast(terms, tf.float64)
  if sums == "flat":
    wrt_min, wrt_max = tf.unstack(flat_sums(tf.reshape(terms, [2, -1])))
  else:
    wrt_min, wrt_max = tf.unstack(column_sums(
        tf.reshape(terms, tf.stack([2, -1, tf.shape(x)[-1]]))))
  return (wrt_input, store_double(wrt_min, x.dtype),
          store_double(wrt_max, x.dtype))


def _fake_quant_gradient_transpose(d_input, d_min, d_max, x, mn, mx, num_bits,
                                   narrow_range, zero_range_rule):
  """Transpose of gradients -> (g*between, sum(g*below), sum(g*above)); the
  range sums of a channel broadcast back over its elements."""
  n = _Nudged(to_compute(mn), to_compute(mx), num_bits, narrow_range)
  between, below, above = _fake_quant_masks(x, n)
  d = to_compute(d_input) * between
  if d_min is not None:
    d += to_compute(d_min) * below
  if d_max is not None:
    d += to_compute(d_max) * above
  d = store(d, x.dtype)
  if zero_range_rule:  # Vars/PerChannel: min == max == 0
    d = tf.where(n.zero_range, d_input, d)
  return d


def _args_range(x, min, max):  # pylint: disable=redefined-builtin
  """The float attrs of Args (flushed as the kernels read them) as tensors of
  the compute type."""
  c = compute_dtype(x.dtype)
  return const(flushed_float32(min), c), const(flushed_float32(max), c)


@no_autograph
def fake_quant_with_min_max_args(inputs, min, max, num_bits, narrow_range,  # pylint: disable=redefined-builtin
                                 name=None):
  with tf.name_scope(name or "FakeQuantWithMinMaxArgs"):
    (x,) = convert_inputs("FakeQuantWithMinMaxArgs", inputs)
    (x,) = _enforce("FakeQuantWithMinMaxArgs", False, [x], num_bits,
                    flushed_float32(min), flushed_float32(max))
    mn, mx = _args_range(x, min, max)

    @tf.custom_gradient
    def fake_quant(x):
      y = _fake_quant_forward(x, mn, mx, num_bits, narrow_range, divide=False,
                              zero_range_rule=False)
      return y, lambda dy: _fake_quant_gradient(dy, x, mn, mx, num_bits,
                                                narrow_range, None)[0]

    return fake_quant(x)


@no_autograph
def fake_quant_with_min_max_args_gradient(gradients, inputs, min, max,  # pylint: disable=redefined-builtin
                                          num_bits, narrow_range, name=None):
  with tf.name_scope(name or "FakeQuantWithMinMaxArgsGradient"):
    g, x = convert_inputs("FakeQuantWithMinMaxArgsGradient", gradients, inputs)
    g, x = _enforce("FakeQuantWithMinMaxArgs", True, [g, x], num_bits,
                    flushed_float32(min), flushed_float32(max))
    mn, mx = _args_range(x, min, max)

    @tf.custom_gradient
    def gradient(g, x):
      out = _fake_quant_gradient(g, x, mn, mx, num_bits, narrow_range, None)[0]

      def grad(d_input):
        return (_fake_quant_gradient_transpose(d_input, None, None, x, mn, mx,
                                               num_bits, narrow_range, False),
                tf.zeros_like(x))

      return out, grad

    return gradient(g, x)


def _fake_quant_vars_op(op_name, inputs, min, max, num_bits, narrow_range,  # pylint: disable=redefined-builtin
                        name, per_channel):
  with tf.name_scope(name or op_name):
    x, mn, mx = convert_inputs(op_name, inputs, min, max)
    x, mn, mx = _enforce(op_name, False, [x, mn, mx], num_bits)

    @tf.custom_gradient
    def fake_quant(x, mn, mx):
      y = _fake_quant_forward(x, mn, mx, num_bits, narrow_range,
                              divide=not per_channel,
                              zero_range_rule=True)

      def grad(dy):
        return _fake_quant_gradient(dy, x, mn, mx, num_bits, narrow_range,
                                    "columns" if per_channel else "flat")

      return y, grad

    return fake_quant(x, mn, mx)


def _fake_quant_vars_gradient_op(op_name, gradients, inputs, min, max,  # pylint: disable=redefined-builtin
                                 num_bits, narrow_range, name, per_channel):
  with tf.name_scope(name or op_name + "Gradient"):
    g, x, mn, mx = convert_inputs(op_name + "Gradient", gradients, inputs, min,
                                  max)
    g, x, mn, mx = _enforce(op_name, True, [g, x, mn, mx], num_bits)
    sums = "columns" if per_channel else "flat"

    @tf.custom_gradient
    def gradient(g, x, mn, mx):
      outputs = _fake_quant_gradient(g, x, mn, mx, num_bits, narrow_range, sums)

      def grad(d_input, d_min, d_max):
        d = _fake_quant_gradient_transpose(d_input, d_min, d_max, x, mn, mx,
                                           num_bits, narrow_range,
                                           zero_range_rule=True)
        return d, tf.zeros_like(x), tf.zeros_like(mn), tf.zeros_like(mx)

      return outputs, grad

    return gradient(g, x, mn, mx)


@no_autograph
def fake_quant_with_min_max_vars(inputs, min, max, num_bits, narrow_range,  # pylint: disable=redefined-builtin
                                 name=None):
  return _fake_quant_vars_op("FakeQuantWithMinMaxVars", inputs, min, max,
                             num_bits, narrow_range, name, per_channel=False)


@no_autograph
def fake_quant_with_min_max_vars_gradient(gradients, inputs, min, max,  # pylint: disable=redefined-builtin
                                          num_bits, narrow_range, name=None):
  return _fake_quant_vars_gradient_op(
      "FakeQuantWithMinMaxVars", gradients, inputs, min, max,
      num_bits, narrow_range, name, per_channel=False)


@no_autograph
def fake_quant_with_min_max_vars_per_channel(inputs, min, max, num_bits,  # pylint: disable=redefined-builtin
                                             narrow_range, name=None):
  return _fake_quant_vars_op("FakeQuantWithMinMaxVarsPerChannel", inputs, min,
                             max, num_bits, narrow_range, name,
                             per_channel=True)


@no_autograph
def fake_quant_with_min_max_vars_per_channel_gradient(gradients, inputs, min,  # pylint: disable=redefined-builtin
                                                      max, num_bits,
                                                      narrow_range, name=None):
  return _fake_quant_vars_gradient_op(
      "FakeQuantWithMinMaxVarsPerChannel", gradients, inputs, min, max,
      num_bits, narrow_range, name, per_channel=True)
