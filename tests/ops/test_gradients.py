"""Gradients of the tf-qdq ops.

* First order, compared with TensorFlow where TF is right: FakeQuant Args, Vars
  and PerChannel; QDQ V4 with range_given=True; the legacy
  quantize_and_dequantize (straight-through).
* Documented deviations: QDQ V4 with range_given=False has the identity
  gradient w.r.t. the input and zero range gradients (TF masks with the ignored
  min/max inputs).
* Second order (nested GradientTape; tf.gradients inside tf.function) and
  forward mode (tf.autodiff.ForwardAccumulator) through every op. The gradient
  ops are linear in `gradients` and piecewise constant in everything else:
  d/d(gradients) is the transposed linear map, the rest is zero.

The range backprops of FakeQuant are summed in double, so they are compared
with TF to rtol 1e-6, not bit for bit.
"""
import math

import numpy as np
import pytest
import tensorflow as tf

import tf_qdq

R = tf_qdq.raw_ops
f32 = np.float32

# ---- reference masks -----------------------------------------------------------


def nudge(mn, mx, num_bits=8, narrow_range=False):
  """docs/semantics.md §4.3 in float32: (nudged_min, nudged_max)."""
  qmin = f32(1 if narrow_range else 0)
  qmax = f32(2**num_bits - 1)
  mn, mx = f32(mn), f32(mx)
  scale = (mx - mn) / (qmax - qmin)
  zpf = qmin - mn / scale
  if zpf < qmin:
    zp = qmin
  elif zpf > qmax:
    zp = qmax
  else:  # std::round: half away from zero
    zp = f32(math.copysign(math.floor(abs(float(zpf)) + 0.5), float(zpf)))
  return (qmin - zp) * scale, (qmax - zp) * scale


def fq_masks(x, mn, mx, num_bits=8, narrow_range=False):
  """(between, below, above) as float32 arrays, per tensor."""
  x = np.asarray(x, np.float32)
  if f32(mn) == 0 and f32(mx) == 0:
    return np.ones_like(x), np.zeros_like(x), np.zeros_like(x)
  lo, hi = nudge(mn, mx, num_bits, narrow_range)
  return ((x >= lo) & (x <= hi)).astype(f32), (x < lo).astype(f32), \
      (x > hi).astype(f32)


def fq_masks_per_channel(x, mn, mx, num_bits=8, narrow_range=False):
  x = np.asarray(x, np.float32)
  out = [np.zeros_like(x) for _ in range(3)]
  for c in range(x.shape[-1]):
    for o, m in zip(out, fq_masks(x[..., c], mn[c], mx[c], num_bits, narrow_range)):
      o[..., c] = m
  return out


def np32(t):
  return np.asarray(t.numpy() if hasattr(t, "numpy") else t, np.float32)


def assert_bitwise_equal(a, b):
  a, b = np.asarray(a), np.asarray(b)
  assert a.dtype == b.dtype and a.shape == b.shape, (a, b)
  assert a.tobytes() == b.tobytes(), (a, b)


def rand(shape, lo=-2., hi=2., seed=0):
  return np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(f32)


def tape_grads(fn, *args, upstream):
  """Gradients of sum(upstream * fn(*args)) w.r.t. every arg."""
  args = [tf.constant(a) for a in args]
  with tf.GradientTape() as tape:
    tape.watch(args)
    y = fn(*args)
    loss = tf.reduce_sum(tf.cast(upstream, y.dtype) * y)
  return tape.gradient(loss, args)


# ---- first order vs TF -------------------------------------------------------------

X = rand([4, 6], seed=1)
X_EDGES = np.array([-7., -6., -0.1, 0., 0.1, 0.9, 1., 6., 7.], f32)
UP = rand([4, 6], 0.5, 1.5, seed=2)
UP_EDGES = np.arange(1, 10, dtype=f32)

ARGS_CONFIGS = [dict(), dict(min=-0.1, max=0.9), dict(min=0.5, max=2.5, num_bits=4),
                dict(min=-1., max=1., num_bits=2, narrow_range=True)]


@pytest.mark.parametrize("attrs", ARGS_CONFIGS)
@pytest.mark.parametrize("x,up", [(X, UP), (X_EDGES, UP_EDGES)])
def test_fake_quant_args_first_order_matches_tf(attrs, x, up):
  ours = tape_grads(lambda t: tf_qdq.fake_quant_with_min_max_args(t, **attrs), x,
                    upstream=up)
  theirs = tape_grads(lambda t: tf.quantization.fake_quant_with_min_max_args(
      t, **attrs), x, upstream=up)
  assert_bitwise_equal(ours[0].numpy(), theirs[0].numpy())
  between, _, _ = fq_masks(x, attrs.get("min", -6.), attrs.get("max", 6.),
                           attrs.get("num_bits", 8), attrs.get("narrow_range", False))
  assert_bitwise_equal(ours[0].numpy(), up * between)


VARS_CONFIGS = [(-1., 1., 8, False), (-0.1, 0.9, 8, False), (0.5, 2.5, 4, False),
                (-3., -1., 8, True), (0., 0., 8, False), (-1., 1., 16, False)]


@pytest.mark.parametrize("mn,mx,num_bits,narrow", VARS_CONFIGS)
@pytest.mark.parametrize("x,up", [(X, UP), (X_EDGES, UP_EDGES)])
def test_fake_quant_vars_first_order_matches_tf(mn, mx, num_bits, narrow, x, up):
  kw = dict(num_bits=num_bits, narrow_range=narrow)
  ours = tape_grads(lambda t, a, b: tf_qdq.fake_quant_with_min_max_vars(
      t, a, b, **kw), x, f32(mn), f32(mx), upstream=up)
  theirs = tape_grads(lambda t, a, b: tf.quantization.fake_quant_with_min_max_vars(
      t, a, b, **kw), x, f32(mn), f32(mx), upstream=up)
  assert_bitwise_equal(ours[0].numpy(), theirs[0].numpy())
  for a, b in zip(ours[1:], theirs[1:]):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
  between, below, above = fq_masks(x, mn, mx, num_bits, narrow)
  assert_bitwise_equal(ours[0].numpy(), up * between)
  np.testing.assert_allclose(ours[1].numpy(), np.sum(up * below, dtype=np.float64),
                             rtol=1e-6)
  np.testing.assert_allclose(ours[2].numpy(), np.sum(up * above, dtype=np.float64),
                             rtol=1e-6)


def test_fake_quant_vars_spec_example():
  """docs/semantics.md §5.3: with [-0.1, 0.9], x=-0.1 lies below the nudged min
  (-0.098039225) and counts toward the min backprop."""
  x = np.array([-0.1, 0.9], f32)
  dx, dmin, dmax = tape_grads(lambda t, a, b: tf_qdq.fake_quant_with_min_max_vars(
      t, a, b), x, f32(-0.1), f32(0.9), upstream=np.array([2., 3.], f32))
  assert dx.numpy().tolist() == [0., 3.]
  assert dmin.numpy() == 2. and dmax.numpy() == 0.


@pytest.mark.parametrize("shape", [[6], [4, 6], [2, 2, 3, 2], [1, 2, 1, 2, 3]])
def test_fake_quant_per_channel_first_order_matches_tf(shape):
  x = rand(shape, seed=len(shape))
  up = rand(shape, 0.5, 1.5, seed=10 + len(shape))
  d = shape[-1]
  mn = -np.linspace(0.2, 1.5, d).astype(f32)
  mx = np.linspace(0.3, 1.7, d).astype(f32)
  mn[0] = mx[0] = 0.  # a pass-through channel
  ours = tape_grads(tf_qdq.fake_quant_with_min_max_vars_per_channel, x, mn, mx,
                    upstream=up)
  theirs = tape_grads(tf.quantization.fake_quant_with_min_max_vars_per_channel, x,
                      mn, mx, upstream=up)
  assert_bitwise_equal(ours[0].numpy(), theirs[0].numpy())
  for a, b in zip(ours[1:], theirs[1:]):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
  between, below, above = fq_masks_per_channel(x, mn, mx)
  assert_bitwise_equal(ours[0].numpy(), up * between)
  axes = tuple(range(len(shape) - 1))
  np.testing.assert_allclose(ours[1].numpy(), np.sum(up * below, axis=axes),
                             rtol=1e-6)


@pytest.mark.parametrize("mn,mx", [(-1., 1.), (0.5, 2.), (-0.3, -0.3), (2., -2.)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_v4_range_given_first_order_matches_tf(mn, mx, dtype):
  x = np.concatenate([X_EDGES, [-1., 0.5, 2., -0.3, -2., np.nan]]).astype(dtype)
  up = np.arange(1, x.size + 1).astype(dtype)
  mn, mx = dtype(mn), dtype(mx)
  if mn > mx:  # the forward rejects it; the gradient op alone has no check
    ours = tf_qdq.quantize_and_dequantize_v4_grad(up, x, mn, mx)
    theirs = tf.raw_ops.QuantizeAndDequantizeV4Grad(gradients=up, input=x,
                                                    input_min=mn, input_max=mx)
    for a, b in zip(ours, theirs):
      assert_bitwise_equal(a.numpy(), b.numpy())
    return
  fn = lambda lib: (lambda t, a, b: lib.quantize_and_dequantize_v2(
      t, a, b, range_given=True))
  ours = tape_grads(fn(tf_qdq), x, mn, mx, upstream=up)
  theirs = tape_grads(fn(tf.quantization), x, mn, mx, upstream=up)
  for a, b in zip(ours, theirs):
    assert_bitwise_equal(a.numpy(), b.numpy())
  # raw min/max mask (not the adjusted range), NaN masked out
  mask = ((x >= mn) & (x <= mx)).astype(dtype)
  assert_bitwise_equal(ours[0].numpy(), up * mask)
  assert ours[1].numpy() == 0 and ours[2].numpy() == 0


def test_v4_range_given_per_channel_gradient():
  """Per channel with a given range works here (TF 2.21 rejects the forward):
  the gradient masks with each channel's raw range."""
  x = rand([3, 4], seed=5)
  mn = np.array([-1., -0.5, 0., -2.], f32)
  mx = np.array([1., 0.5, 2., -1.], f32)
  up = rand([3, 4], 0.5, 1.5, seed=6)
  dx, dmin, dmax = tape_grads(lambda t, a, b: tf_qdq.quantize_and_dequantize_v4(
      t, a, b, range_given=True, axis=1), x, mn, mx, upstream=up)
  assert_bitwise_equal(dx.numpy(), up * ((x >= mn) & (x <= mx)).astype(f32))
  assert_bitwise_equal(dmin.numpy(), np.zeros([4], f32))
  assert_bitwise_equal(dmax.numpy(), np.zeros([4], f32))
  # the same op TF would have used for the gradient
  want = tf.raw_ops.QuantizeAndDequantizeV4Grad(gradients=up, input=x,
                                                input_min=mn, input_max=mx, axis=1)
  assert_bitwise_equal(dx.numpy(), want[0].numpy())


@pytest.mark.parametrize("range_given", [True, False])
@pytest.mark.parametrize("axis", [None, 1])
def test_legacy_quantize_and_dequantize_is_straight_through(range_given, axis):
  x = tf.constant(X)
  shape = [] if axis is None else [6]
  mn = tf.Variable(tf.fill(shape, -1.))
  mx = tf.Variable(tf.fill(shape, 1.))
  results = []
  for lib in (tf_qdq, tf.quantization):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = lib.quantize_and_dequantize(x, mn, mx, range_given=range_given,
                                      axis=axis)
      loss = tf.reduce_sum(UP * y)
    results.append((y, tape.gradient(loss, [x, mn, mx])))
    if axis is not None and range_given:
      break  # TF 2.21's forward rejects per channel with a given range
  (y, (dx, dmin, dmax)) = results[0]
  assert_bitwise_equal(dx.numpy(), UP)
  assert dmin is None and dmax is None
  if len(results) == 2:
    assert_bitwise_equal(y.numpy(), results[1][0].numpy())
    assert results[1][1][1] is None and results[1][1][2] is None
    assert_bitwise_equal(dx.numpy(), results[1][1][0].numpy())


# ---- deviation: V4 with range_given=False ----------------------------------------


@pytest.mark.parametrize("mn,mx", [(0., 0.), (-0.5, 0.5), (3., -3.)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_v4_range_not_given_gradient_is_identity(mn, mx, dtype):
  x = np.concatenate([X_EDGES, [-5., 5.]]).astype(dtype)
  up = np.arange(1, x.size + 1).astype(dtype)
  dx, dmin, dmax = tape_grads(lambda t, a, b: tf_qdq.quantize_and_dequantize_v2(
      t, a, b, range_given=False), x, dtype(mn), dtype(mx), upstream=up)
  assert_bitwise_equal(dx.numpy(), up)
  assert_bitwise_equal(dmin.numpy(), dtype(0))
  assert_bitwise_equal(dmax.numpy(), dtype(0))


def test_v4_range_not_given_differs_from_tf_masking():
  """TF masks with the ignored inputs: (x, 0., 0.) gives zeros except at 0."""
  x = np.array([-1., 0., 2.], f32)
  fn = lambda lib: (lambda t, a, b: lib.quantize_and_dequantize_v2(t, a, b))
  ours = tape_grads(fn(tf_qdq), x, f32(0.), f32(0.), upstream=np.ones(3, f32))
  theirs = tape_grads(fn(tf.quantization), x, f32(0.), f32(0.),
                      upstream=np.ones(3, f32))
  assert ours[0].numpy().tolist() == [1., 1., 1.]
  assert theirs[0].numpy().tolist() == [0., 1., 0.]


def test_v4_range_not_given_per_channel_gradient_is_identity():
  x = rand([3, 4], seed=7)
  up = rand([3, 4], seed=8)
  dx, dmin, dmax = tape_grads(lambda t, a, b: tf_qdq.quantize_and_dequantize_v4(
      t, a, b, axis=1), x, np.zeros([4], f32), np.zeros([4], f32), upstream=up)
  assert_bitwise_equal(dx.numpy(), up)
  assert_bitwise_equal(dmin.numpy(), np.zeros([4], f32))
  assert_bitwise_equal(dmax.numpy(), np.zeros([4], f32))


# ---- second order --------------------------------------------------------------------
#
# For a forward op y = F(x, ...): L = sum(c * y), then T = sum_i sum(u_i * dL/darg_i).
# dT/dc is the forward op's Jacobian transposed twice, i.e. u_0 * between (+ the
# range terms), and T does not depend on x, min or max.

DTYPES = [np.float32, np.float16]
XS = np.array([[-3., -1.5, -0.75, -0.25, 0., 0.3], [0.6, 0.8, 1.25, 2., 3., -2.5]])
MN, MX = -1.0, 1.0  # nudged to [-1.0039216, 0.9960785]: no x sits near them


def _second_order_eager(forward, x, ranges, c, us):
  x = tf.constant(x)
  ranges = [tf.constant(r) for r in ranges]
  c = tf.constant(c)
  with tf.GradientTape(persistent=True) as outer:
    outer.watch([c, x] + ranges)
    with tf.GradientTape() as inner:
      inner.watch([x] + ranges)
      loss = tf.reduce_sum(c * forward(x, *ranges))
    grads = inner.gradient(loss, [x] + ranges)
    target = tf.add_n([tf.reduce_sum(u * g) for u, g in zip(us, grads)])
  return outer.gradient(target, [c, x] + ranges)


def _second_order_graph(forward, x, ranges, c, us):
  n = len(ranges)

  @tf.function
  def f(x, c, *rest):
    ranges, us = list(rest[:n]), list(rest[n:])
    y = forward(x, *ranges)
    grads = tf.gradients(y, [x] + ranges, grad_ys=c)
    return tf.gradients(grads, [c, x] + ranges, grad_ys=us,
                        unconnected_gradients=tf.UnconnectedGradients.ZERO)

  return f(tf.constant(x), tf.constant(c), *[tf.constant(r) for r in ranges],
           *[tf.constant(u) for u in us])


def _check_second_order(forward, x, ranges, c, us, expected_dc, mode):
  run = _second_order_eager if mode == "eager" else _second_order_graph
  dc, *rest = run(forward, x, ranges, c, us)
  assert dc.dtype == x.dtype
  np.testing.assert_array_equal(np32(dc), expected_dc)
  for r in rest:  # piecewise constant in x, min, max
    if r is not None:
      np.testing.assert_array_equal(np32(r), 0)


MODES = ["eager", "tf_function"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_second_order_fake_quant_vars(mode, dtype):
  x = XS.astype(dtype)
  c = np.arange(1, 13).reshape(2, 6).astype(dtype)
  us = [np.arange(12, 0, -1).reshape(2, 6).astype(dtype), dtype(3.), dtype(5.)]
  between, below, above = fq_masks(x, MN, MX)
  expected = np32(us[0]) * between + 3. * below + 5. * above
  _check_second_order(tf_qdq.fake_quant_with_min_max_vars, x,
                      [dtype(MN), dtype(MX)], c, us, expected, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_second_order_fake_quant_per_channel(mode, dtype):
  x = XS.T.astype(dtype)  # [6, 2]: two channels
  mn = np.array([-1., -0.5], dtype)
  mx = np.array([1., 2.5], dtype)
  c = np.arange(1, 13).reshape(6, 2).astype(dtype)
  us = [np.arange(12, 0, -1).reshape(6, 2).astype(dtype),
        np.array([3., 7.], dtype), np.array([5., 11.], dtype)]
  between, below, above = fq_masks_per_channel(x, mn, mx)
  expected = (np32(us[0]) * between + np32(us[1]) * below + np32(us[2]) * above)
  _check_second_order(tf_qdq.fake_quant_with_min_max_vars_per_channel, x, [mn, mx],
                      c, us, expected, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_second_order_fake_quant_args(mode, dtype):
  x = XS.astype(dtype)
  c = np.arange(1, 13).reshape(2, 6).astype(dtype)
  us = [np.arange(12, 0, -1).reshape(2, 6).astype(dtype)]
  between, _, _ = fq_masks(x, MN, MX)
  _check_second_order(
      lambda t: tf_qdq.fake_quant_with_min_max_args(t, min=MN, max=MX), x, [], c,
      us, np32(us[0]) * between, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 1])
def test_second_order_v4_range_given(mode, dtype, axis):
  x = XS.astype(dtype)
  if axis == -1:
    mn, mx = dtype(-1.), dtype(1.)
  else:
    mn = np.array([-1., -0.5, 0., -0.25, -1., 0.], dtype)
    mx = np.array([1., 0.5, 1., 0., 0., 0.3], dtype)
  c = np.arange(1, 13).reshape(2, 6).astype(dtype)
  us = [np.arange(12, 0, -1).reshape(2, 6).astype(dtype), np.zeros_like(mn),
        np.zeros_like(mx)]
  mask = ((x >= mn) & (x <= mx)).astype(f32)
  _check_second_order(
      lambda t, a, b: tf_qdq.quantize_and_dequantize_v4(t, a, b, range_given=True,
                                                        axis=axis),
      x, [mn, mx], c, us, np32(us[0]) * mask, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_second_order_v4_range_not_given(mode, dtype):
  x = XS.astype(dtype)
  c = np.arange(1, 13).reshape(2, 6).astype(dtype)
  us = [np.arange(12, 0, -1).reshape(2, 6).astype(dtype), dtype(2.), dtype(3.)]
  _check_second_order(
      lambda t, a, b: tf_qdq.quantize_and_dequantize_v4(t, a, b), x,
      [dtype(0.), dtype(0.)], c, us, np32(us[0]), mode)


@pytest.mark.parametrize("mode", MODES)
def test_second_order_legacy_straight_through(mode):
  x = XS.astype(f32)
  c = np.arange(1, 13).reshape(2, 6).astype(f32)
  us = [np.arange(12, 0, -1).reshape(2, 6).astype(f32)]
  _check_second_order(
      lambda t: tf_qdq.quantize_and_dequantize(t, -1., 1., range_given=True), x,
      [], c, us, us[0], mode)


# -- the gradient ops themselves: linear in `gradients`, constant in the rest --------


def _grad_op_jacobian_transpose(op, inputs, us):
  """d/d(inputs) of sum_i sum(u_i * op(*inputs)[i])."""
  inputs = [tf.constant(t) for t in inputs]
  with tf.GradientTape() as tape:
    tape.watch(inputs)
    outs = op(*inputs)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    target = tf.add_n([tf.reduce_sum(u * o) for u, o in zip(us, outs)])
  return tape.gradient(target, inputs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fake_quant_vars_gradient_op_is_linear(dtype):
  g = np.arange(1, 13).reshape(2, 6).astype(dtype)
  x = XS.astype(dtype)
  us = [np.arange(12, 0, -1).reshape(2, 6).astype(dtype), dtype(3.), dtype(5.)]
  dg, dx, dmin, dmax = _grad_op_jacobian_transpose(
      tf_qdq.fake_quant_with_min_max_vars_gradient, [g, x, dtype(MN), dtype(MX)],
      us)
  between, below, above = fq_masks(x, MN, MX)
  np.testing.assert_array_equal(np32(dg),
                                np32(us[0]) * between + 3. * below + 5. * above)
  for t in (dx, dmin, dmax):
    np.testing.assert_array_equal(np32(t), 0)


@pytest.mark.parametrize("mn,mx,num_bits,narrow", [
    (-0.1, 0.9, 8, False), (0., 0., 8, False), (0.5, 2.5, 4, True),
    (-3., -1., 2, False)])
def test_fake_quant_vars_gradient_op_is_linear_at_the_nudged_edges(
    mn, mx, num_bits, narrow):
  lo, hi = nudge(mn, mx, num_bits, narrow) if mn != mx else (f32(0), f32(0))
  # just outside the nudged range (no denormals: the CPU flushes them to zero)
  step = lambda v, d: np.nextafter(v, f32(d)) if v != 0 else f32(d * 1e-30)
  x = np.array([lo, hi, step(lo, -1), step(hi, 1), mn, mx, 0., -5., 5., np.nan],
               f32)
  g = np.arange(1, x.size + 1).astype(f32)
  us = [np.arange(x.size, 0, -1).astype(f32), f32(3.), f32(5.)]
  kw = dict(num_bits=num_bits, narrow_range=narrow)
  for mode in MODES:
    if mode == "eager":
      dg, dx, dmin, dmax = _grad_op_jacobian_transpose(
          lambda *a: tf_qdq.fake_quant_with_min_max_vars_gradient(*a, **kw),
          [g, x, f32(mn), f32(mx)], us)
    else:
      @tf.function
      def f(g, x, mn, mx, u0, u1, u2):
        outs = tf_qdq.fake_quant_with_min_max_vars_gradient(g, x, mn, mx, **kw)
        return tf.gradients(list(outs), [g, x, mn, mx], grad_ys=[u0, u1, u2],
                            unconnected_gradients=tf.UnconnectedGradients.ZERO)
      dg, dx, dmin, dmax = f(g, x, f32(mn), f32(mx), *us)
    between, below, above = fq_masks(x, mn, mx, num_bits, narrow)
    np.testing.assert_array_equal(dg.numpy(),
                                  us[0] * between + 3. * below + 5. * above)
    for t in (dx, dmin, dmax):
      np.testing.assert_array_equal(t.numpy(), 0)
  # the masks agree with the kernel's own first-order outputs
  dx, dmin, dmax = tf_qdq.fake_quant_with_min_max_vars_gradient(
      np.ones_like(x), x, f32(mn), f32(mx), **kw)
  np.testing.assert_array_equal(dx.numpy(), between)
  assert dmin.numpy() == below.sum() and dmax.numpy() == above.sum()


@pytest.mark.parametrize("dtype", DTYPES)
def test_fake_quant_per_channel_gradient_op_is_linear(dtype):
  g = np.arange(1, 13).reshape(6, 2).astype(dtype)
  x = XS.T.astype(dtype)
  mn, mx = np.array([-1., -0.5], dtype), np.array([1., 2.5], dtype)
  us = [np.ones([6, 2], dtype), np.array([3., 7.], dtype), np.array([5., 11.], dtype)]
  dg, dx, dmin, dmax = _grad_op_jacobian_transpose(
      tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient, [g, x, mn, mx], us)
  between, below, above = fq_masks_per_channel(x, mn, mx)
  np.testing.assert_array_equal(
      np32(dg), between + np32(us[1]) * below + np32(us[2]) * above)
  for t in (dx, dmin, dmax):
    np.testing.assert_array_equal(np32(t), 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fake_quant_args_gradient_op_is_linear(dtype):
  g = np.arange(1, 13).reshape(2, 6).astype(dtype)
  x = XS.astype(dtype)
  us = [np.arange(12, 0, -1).reshape(2, 6).astype(dtype)]
  dg, dx = _grad_op_jacobian_transpose(
      lambda a, b: tf_qdq.fake_quant_with_min_max_args_gradient(a, b, min=MN,
                                                                max=MX),
      [g, x], us)
  np.testing.assert_array_equal(np32(dg), np32(us[0]) * fq_masks(x, MN, MX)[0])
  np.testing.assert_array_equal(np32(dx), 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0])
def test_v4_grad_op_is_linear(dtype, axis):
  """TF raises TypeError here (issue #59960)."""
  g = np.arange(1, 13).reshape(2, 6).astype(dtype)
  x = XS.astype(dtype)
  if axis == -1:
    mn, mx = dtype(-1.), dtype(1.)
  else:
    mn, mx = np.array([-1., 0.], dtype), np.array([1., 2.], dtype)
  us = [np.arange(12, 0, -1).reshape(2, 6).astype(dtype), np.ones_like(mn) * 4,
        np.ones_like(mx) * 9]
  dg, dx, dmin, dmax = _grad_op_jacobian_transpose(
      lambda *a: tf_qdq.quantize_and_dequantize_v4_grad(*a, axis=axis),
      [g, x, mn, mx], us)
  bmn = mn if axis == -1 else mn[:, None]
  bmx = mx if axis == -1 else mx[:, None]
  mask = ((x >= bmn) & (x <= bmx)).astype(f32)
  np.testing.assert_array_equal(np32(dg), np32(us[0]) * mask)
  for t in (dx, dmin, dmax):
    np.testing.assert_array_equal(np32(t), 0)


def test_tf_v4_grad_second_order_is_broken_but_ours_works():
  """Documents the deviation: TF's own V4Grad gradient raises TypeError."""
  g, x = tf.constant([1., 2.]), tf.constant([0.5, 3.])
  with tf.GradientTape() as tape:
    tape.watch(g)
    out = tf.raw_ops.QuantizeAndDequantizeV4Grad(gradients=g, input=x,
                                                 input_min=-1., input_max=1.)
  with pytest.raises(TypeError):
    tape.gradient(out[0], g)
  with tf.GradientTape() as tape:
    tape.watch(g)
    out = tf_qdq.quantize_and_dequantize_v4_grad(g, x, -1., 1.)
  assert tape.gradient(out[0], g).numpy().tolist() == [1., 0.]


# ---- forward mode ---------------------------------------------------------------------


def _jvp(fn, primals, tangents):
  primals = [tf.constant(p) for p in primals]
  tangents = [tf.constant(t) for t in tangents]
  with tf.autodiff.ForwardAccumulator(primals, tangents) as acc:
    outs = fn(*primals)
  outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
  return [acc.jvp(o, unconnected_gradients=tf.UnconnectedGradients.ZERO)
          for o in outs]


@pytest.mark.parametrize("dtype", DTYPES)
def test_jvp_fake_quant_vars_gradient_wrt_gradients(dtype):
  """Linear in `gradients`: the JVP is the op applied to the tangent."""
  g = np.arange(1, 13).reshape(2, 6).astype(dtype)
  t = np.arange(12, 0, -1).reshape(2, 6).astype(dtype)
  x = XS.astype(dtype)
  op = tf_qdq.fake_quant_with_min_max_vars_gradient
  jvps = _jvp(lambda a: op(a, x, dtype(MN), dtype(MX)), [g], [t])
  want = op(t, x, dtype(MN), dtype(MX))
  for a, b in zip(jvps, want):
    assert_bitwise_equal(a.numpy(), b.numpy())
  # and nothing w.r.t. inputs, min, max
  zero = _jvp(lambda a, b, c: op(g, a, b, c), [x, dtype(MN), dtype(MX)],
              [np.ones_like(x), dtype(1.), dtype(1.)])
  for z in zero:
    np.testing.assert_array_equal(np32(z), 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_jvp_per_channel_and_args_gradients_wrt_gradients(dtype):
  x = XS.T.astype(dtype)
  g = np.arange(1, 13).reshape(6, 2).astype(dtype)
  t = np.arange(12, 0, -1).reshape(6, 2).astype(dtype)
  mn, mx = np.array([-1., -0.5], dtype), np.array([1., 2.5], dtype)
  op = tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient
  for a, b in zip(_jvp(lambda a: op(a, x, mn, mx), [g], [t]), op(t, x, mn, mx)):
    assert_bitwise_equal(a.numpy(), b.numpy())
  args = lambda a: tf_qdq.fake_quant_with_min_max_args_gradient(a, x, min=-1.,
                                                               max=1.)
  assert_bitwise_equal(_jvp(args, [g], [t])[0].numpy(), args(t).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_jvp_v4_grad_wrt_gradients(dtype):
  x = XS.astype(dtype)
  g = np.arange(1, 13).reshape(2, 6).astype(dtype)
  t = np.arange(12, 0, -1).reshape(2, 6).astype(dtype)
  op = lambda a: tf_qdq.quantize_and_dequantize_v4_grad(a, x, dtype(-1.), dtype(1.))
  dx, dmin, dmax = _jvp(op, [g], [t])
  assert_bitwise_equal(dx.numpy(), op(t)[0].numpy())
  np.testing.assert_array_equal(np32(dmin), 0)
  np.testing.assert_array_equal(np32(dmax), 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_jvp_forward_ops(dtype):
  """JVPs of the forward ops are the gradient masks applied to the tangents."""
  x = XS.astype(dtype)
  t = np.arange(1, 13).reshape(2, 6).astype(dtype)
  between, below, above = fq_masks(x, MN, MX)
  mn, mx = dtype(MN), dtype(MX)

  # FakeQuantWithMinMaxVars: w.r.t. x, then min, then max
  fq = tf_qdq.fake_quant_with_min_max_vars
  (jx,) = _jvp(lambda a: fq(a, mn, mx), [x], [t])
  np.testing.assert_array_equal(np32(jx), np32(t) * between)
  (jmin,) = _jvp(lambda b: fq(x, b, mx), [mn], [dtype(2.)])
  np.testing.assert_array_equal(np32(jmin), 2. * below)
  (jmax,) = _jvp(lambda b: fq(x, mn, b), [mx], [dtype(3.)])
  np.testing.assert_array_equal(np32(jmax), 3. * above)

  # per channel, w.r.t. min
  pc = tf_qdq.fake_quant_with_min_max_vars_per_channel
  mnv, mxv = np.full([6], MN, dtype), np.full([6], MX, dtype)
  tmin = np.arange(1, 7).astype(dtype)
  (jmin,) = _jvp(lambda b: pc(x, b, mxv), [mnv], [tmin])
  np.testing.assert_array_equal(np32(jmin), np32(tmin) * below)

  # FakeQuantWithMinMaxArgs
  (ja,) = _jvp(lambda a: tf_qdq.fake_quant_with_min_max_args(a, min=MN, max=MX),
               [x], [t])
  np.testing.assert_array_equal(np32(ja), np32(t) * between)

  # QDQ V4: masked with the raw range when given, identity otherwise
  qdq = tf_qdq.quantize_and_dequantize_v4
  (jg,) = _jvp(lambda a: qdq(a, mn, mx, range_given=True), [x], [t])
  np.testing.assert_array_equal(np32(jg), np32(t) * ((x >= mn) & (x <= mx)))
  (jn,) = _jvp(lambda a: qdq(a, dtype(0.), dtype(0.)), [x], [t])
  np.testing.assert_array_equal(np32(jn), np32(t))


@pytest.mark.parametrize("in_function", [False, True])
def test_jvp_legacy_straight_through_matches_tf(in_function):
  x = tf.constant(XS.astype(f32))
  t = tf.constant(np.arange(1, 13).reshape(2, 6).astype(f32))

  def jvp(lib):
    def f(x, t):
      with tf.autodiff.ForwardAccumulator(x, t) as acc:
        y = lib.quantize_and_dequantize(x, -1., 1., range_given=True)
      return acc.jvp(y)
    return (tf.function(f) if in_function else f)(x, t)

  theirs = jvp(tf.quantization)
  np.testing.assert_array_equal(theirs.numpy(), t.numpy())
  np.testing.assert_array_equal(jvp(tf_qdq).numpy(), theirs.numpy())


def test_jvp_inside_tf_function():
  x = tf.constant(XS.astype(f32))
  t = tf.constant(np.arange(1, 13).reshape(2, 6).astype(f32))

  @tf.function
  def f(x, t):
    with tf.autodiff.ForwardAccumulator(x, t) as acc:
      y = tf_qdq.fake_quant_with_min_max_vars(x, MN, MX)
      dx = tf_qdq.fake_quant_with_min_max_vars_gradient(x, x, MN, MX)[0]
    return acc.jvp(y), acc.jvp(dx)

  jy, jdx = f(x, t)
  between = fq_masks(XS, MN, MX)[0]
  np.testing.assert_array_equal(jy.numpy(), t.numpy() * between)
  # dx = x * between (x used as gradients too): d/dx = between along t (the
  # derivative through `inputs` is zero)
  np.testing.assert_array_equal(jdx.numpy(), t.numpy() * between)


@pytest.mark.parametrize("dtype", [np.float16, tf.bfloat16.as_numpy_dtype])
def test_first_order_16_bit_against_masks(dtype):
  x = XS.astype(dtype)
  up = np.arange(1, 13).reshape(2, 6).astype(dtype)
  dx, dmin, dmax = tape_grads(tf_qdq.fake_quant_with_min_max_vars, x, dtype(MN),
                              dtype(MX), upstream=up)
  between, below, above = fq_masks(np32(x), MN, MX)
  np.testing.assert_array_equal(np32(dx), np32(up) * between)
  assert float(np32(dmin)) == float(np.sum(np32(up) * below))
  assert float(np32(dmax)) == float(np.sum(np32(up) * above))
  assert dx.dtype.as_numpy_dtype == dtype


def test_unneeded_range_backprops_are_skipped_with_the_same_input_backprop():
  """In a graph whose per-tensor range is not differentiated (a moving-average
  quantizer's), the gradient op skips its min/max sums (the executor does not
  require those outputs): the input backprop keeps TF's bits."""
  x = tf.constant(np.random.default_rng(0).uniform(-1.2, 1.2, [64, 300]),
                  tf.float32)
  lo, hi = tf.Variable(-1.0, trainable=False), tf.Variable(1.0, trainable=False)

  @tf.function
  def input_only(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = tf_qdq.fake_quant_with_min_max_vars(x, lo, hi)
      loss = y * y
    return tape.gradient(loss, x)

  @tf.function
  def with_range(x):
    mn, mx = tf.convert_to_tensor(lo), tf.convert_to_tensor(hi)
    with tf.GradientTape() as tape:
      tape.watch([x, mn, mx])
      y = tf_qdq.fake_quant_with_min_max_vars(x, mn, mx)
      loss = y * y
    return tape.gradient(loss, [x, mn, mx])

  y = tf.quantization.fake_quant_with_min_max_vars(x, -1.0, 1.0)
  want = tf.quantization.fake_quant_with_min_max_vars_gradient(2 * y, x, -1.0,
                                                               1.0)
  got, full = input_only(x), with_range(x)
  assert got.numpy().tobytes() == want[0].numpy().tobytes()
  assert full[0].numpy().tobytes() == want[0].numpy().tobytes()
  for ours, theirs in zip(full[1:], want[1:]):  # the sums are still there
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    assert ours.numpy() != 0
