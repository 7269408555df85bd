"""XLA: every public tf_qdq function under tf.function(jit_compile=True) gives
the bits of the eager kernels, forward and gradients, for float32, float64,
half and bfloat16.

Inside XLA the functions build compositions of TF ops (tf_qdq._xla) instead of
the custom ops. The inputs below aim at what XLA could get wrong: rounding ties
and values a few ulps around them (FMA contraction, HALF_UP's rounded sum),
NaN, ±inf, ±0 and subnormals (select-based clamps, masks that multiply), zero
points at exactly .5 (std::round), constant ranges (XLA's divide-by-constant
and reassociation rewrites), mixed-sign zeros in a data range, and tensors big
enough for the multi-block sums. The min/max backprop sums are bit-exact too:
the lowering adds in the kernels' canonical order.
"""
import numpy as np
import pytest
import tensorflow as tf

import tf_qdq
from tf_qdq import _xla
from _parity_util import ALL_DTYPES, BF16, Nudged, assert_same_bits
from _parity_util import compute_dtype, dtype_name, rng_for


def _jit(fn, **kwargs):
  return tf.function(fn, jit_compile=True, **kwargs)


def _assert_all_same(eager, jitted, what):
  assert sorted(eager) == sorted(jitted)
  for key in sorted(eager):
    assert_same_bits(jitted[key], eager[key],
                     what=f"{what}: {key} (XLA vs eager)")


# ---- inputs ------------------------------------------------------------------


def _around(points, dt, ulps=3):
  """`points` (float64) rounded to dt, and their neighbours up to `ulps` ulps
  away on both sides."""
  p = np.asarray(points, np.float64).astype(dt)
  out = [p]
  up, down = p, p
  for _ in range(ulps):
    up, down = _next(up, +1), _next(down, -1)
    out += [up, down]
  return np.concatenate(out)


def _next(a, direction):
  """np.nextafter towards direction * inf; for bfloat16 (which NumPy cannot
  do) by stepping the bit pattern."""
  if a.dtype != BF16:
    return np.nextafter(a, np.asarray(direction * np.inf, a.dtype))
  u = a.view(np.uint16).astype(np.int32)
  step = np.where(u & 0x8000, -direction, direction)
  zero = (u & 0x7fff) == 0
  u = np.where(zero, 1 if direction > 0 else 0x8001, u + step)
  return u.astype(np.uint16).view(a.dtype)


def _specials(dt):
  dt = np.dtype(dt)
  tiny = np.float64(np.finfo(np.float32 if dt == BF16 else dt).tiny)
  vals = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, tiny, -tiny,
          tiny / 4, -tiny / 4, 1e30, -1e30, 0.5, -0.5, 1.5, -2.5]
  with np.errstate(over="ignore"):
    return np.asarray(vals, np.float64).astype(dt)


def _qdq_inputs(dt):
  """Values around the rounding ties of the QDQ cases below."""
  rng = rng_for("xla-qdq", dtype_name(dt))
  ties = [(np.arange(-130, 130) + 0.5) / 127.0,           # scale 127
          (np.arange(-130, 130) + 0.5) * (1.9 / 127.0),   # scale 127 / 1.9
          (np.arange(-8, 9) + 0.5) * (0.75 / 7.0)]        # 4 bits, HALF_UP
  x = np.concatenate([_around(np.concatenate(ties), dt), _specials(dt),
                      rng.uniform(-2.5, 2.5, 3000).astype(dt)])
  return rng.permutation(x)


_FQ_RANGES = [  # (min, max, num_bits, narrow_range)
    (-1.0, 1.0, 8, False),      # zero point 127.4999924 (tfmot#858)
    (-0.5, 2.5, 4, False),      # zero point exactly 2.5: away from zero -> 3
    (-0.25, 1.25, 2, False),    # zero point exactly 0.5 -> 1
    (-0.37, 1.9, 8, True),
    (0.3, 1.7, 5, False),       # a range that excludes 0
    (-3.1, -0.2, 16, False),
]


def _fake_quant_inputs(dt):
  """Values a few ulps around every grid tie of the _FQ_RANGES, in dt."""
  rng = rng_for("xla-fq", dtype_name(dt))
  cdt = compute_dtype(dt)
  parts = [_specials(dt), rng.uniform(-4, 4, 2000).astype(dt)]
  for mn, mx, bits, narrow in _FQ_RANGES:
    n = Nudged(np.asarray(mn, dt).astype(cdt), np.asarray(mx, dt).astype(cdt),
               bits, narrow, cdt)
    levels = min((1 << bits), 300)
    k = np.arange(-1, levels + 1) + 0.5
    parts.append(_around(np.float64(n.nudged_min) + k * np.float64(n.scale),
                         dt, ulps=2))
  return rng.permutation(np.concatenate(parts))


def _gradients_like(x, rng, specials=True):
  g = rng.standard_normal(x.shape).astype(x.dtype)
  if specials:
    flat = g.reshape(-1)
    flat[:6] = np.asarray([np.inf, -np.inf, np.nan, -0.0, 0.0, -1.0]).astype(
        x.dtype)
  return g


# ---- every function, every dtype ---------------------------------------------


def _qdq_cases(x, g, dt):
  """Forward outputs and input gradients of the QDQ functions."""
  out = {}
  c = lambda v: tf.constant(np.asarray(v, dt))
  cases = {
      "given_even": dict(input_min=c(-1.0), input_max=c(1.0), range_given=True),
      "given_up": dict(input_min=c(-0.37), input_max=c(1.9), range_given=True,
                       round_mode="HALF_UP"),
      "given_up_4bit_narrow": dict(input_min=c(-0.75), input_max=c(0.75),
                                   range_given=True, num_bits=4,
                                   narrow_range=True, round_mode="HALF_UP"),
      "given_unsigned": dict(input_min=c(0.0), input_max=c(1.9),
                             range_given=True, signed_input=False),
      "data_even": dict(input_min=c(0.0), input_max=c(0.0)),
      "data_up_unsigned": dict(input_min=c(0.0), input_max=c(0.0),
                               round_mode="HALF_UP", signed_input=False,
                               num_bits=5),
  }
  finite = tf.where(tf.math.is_finite(x), x, tf.zeros_like(x))
  for name, kw in cases.items():
    data = x if kw.get("range_given") else finite  # inf in data: all NaN
    with tf.GradientTape() as tape:
      tape.watch(data)
      y = tf_qdq.quantize_and_dequantize_v4(data, **kw)
    out[f"qdq_v4/{name}"] = y
    out[f"qdq_v4/{name}/grad"] = tape.gradient(y, data, output_gradients=g)
  # Per channel, range given (the axis is the last one of a [N, 4] view) and
  # from the data, through the tf.quantization-style wrappers.
  x4 = tf.reshape(x[:x.shape[0] // 4 * 4], [-1, 4])
  g4 = tf.reshape(g[:x.shape[0] // 4 * 4], [-1, 4])
  lo, hi = c([-1.0, -0.37, 0.0, -2.0]), c([1.0, 1.9, 0.0, -1.0])
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(x4)
    y_given = tf_qdq.quantize_and_dequantize_v2(x4, lo, hi, range_given=True,
                                                axis=-1, round_mode="HALF_UP")
    x4f = tf.where(tf.math.is_finite(x4), x4, tf.zeros_like(x4))
    y_data = tf_qdq.quantize_and_dequantize_v2(x4f, lo, hi, axis=1)
    y_legacy = tf_qdq.quantize_and_dequantize(x4, lo[0], hi[0],
                                              range_given=True)
  out["qdq_v2/per_channel_given"] = y_given
  out["qdq_v2/per_channel_given/grad"] = tape.gradient(y_given, x4, g4)
  out["qdq_v2/per_channel_data"] = y_data
  out["qdq_legacy"] = y_legacy
  out["qdq_legacy/grad"] = tape.gradient(y_legacy, x4, g4)
  # The gradient op itself, per tensor and per channel.
  for name, (mn, mx, axis, gg, xx) in {
      "v4_grad": (c(-1.0), c(1.0), -1, g, x),
      "v4_grad_axis": (lo, hi, 1, g4, x4)}.items():
    dx, dmn, dmx = tf_qdq.quantize_and_dequantize_v4_grad(gg, xx, mn, mx,
                                                          axis=axis)
    out[f"qdq_{name}"], out[f"qdq_{name}/min"], out[f"qdq_{name}/max"] = (
        dx, dmn, dmx)
  return out


def _fake_quant_cases(x, g, g_special, dt):
  """Forward outputs, gradients through the tape (the registered gradient in
  eager, the lowering's custom gradient under XLA) and the public gradient
  functions. g_special has inf/NaN/-0 entries: masks are multiplications, so
  they poison the sums."""
  out = {}
  c = lambda v: tf.constant(np.asarray(v, dt))
  for i, (mn, mx, bits, narrow) in enumerate(_FQ_RANGES[:4]):
    attrs = dict(num_bits=bits, narrow_range=narrow)
    lo, hi = c(mn), c(mx)  # constants: what XLA could fold
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([x, lo, hi])
      y_args = tf_qdq.fake_quant_with_min_max_args(x, min=mn, max=mx, **attrs)
      y_vars = tf_qdq.fake_quant_with_min_max_vars(x, lo, hi, **attrs)
    out[f"args{i}"] = y_args
    out[f"args{i}/grad"] = tape.gradient(y_args, x, output_gradients=g)
    out[f"vars{i}"] = y_vars
    for j, d in enumerate(tape.gradient(y_vars, [x, lo, hi],
                                        output_gradients=g)):
      out[f"vars{i}/grad{j}"] = d
  attrs = dict(num_bits=_FQ_RANGES[1][2])
  lo, hi = c(_FQ_RANGES[1][0]), c(_FQ_RANGES[1][1])
  out["args/gradient_fn"] = tf_qdq.fake_quant_with_min_max_args_gradient(
      g_special, x, min=_FQ_RANGES[1][0], max=_FQ_RANGES[1][1], **attrs)
  for j, d in enumerate(tf_qdq.fake_quant_with_min_max_vars_gradient(
      g_special, x, lo, hi, **attrs)):
    out[f"vars/gradient_fn{j}"] = d
  zero = c(0.0)  # min == max == 0: outputs 0, the gradient is a copy
  out["vars_zero_range"] = tf_qdq.fake_quant_with_min_max_vars(x, zero, zero)
  for j, d in enumerate(tf_qdq.fake_quant_with_min_max_vars_gradient(
      g_special, x, zero, zero)):
    out[f"vars_zero_range/gradient_fn{j}"] = d
  # Per channel: a column per range, plus special ranges (all zero; min == max
  # != 0; NaN and infinite bounds).
  cols = len(_FQ_RANGES) + 4
  rows = x.shape[0] // cols
  xc = tf.reshape(x[:rows * cols], [rows, cols])
  gc = tf.reshape(g[:rows * cols], [rows, cols])
  gc_special = tf.reshape(g_special[:rows * cols], [rows, cols])
  lo = c([r[0] for r in _FQ_RANGES] + [0.0, 1.5, np.nan, -1.0])
  hi = c([r[1] for r in _FQ_RANGES] + [0.0, 1.5, 1.0, np.inf])
  for bits in (2, 8):
    with tf.GradientTape() as tape:
      tape.watch([xc, lo, hi])
      y = tf_qdq.fake_quant_with_min_max_vars_per_channel(xc, lo, hi,
                                                          num_bits=bits)
    out[f"per_channel{bits}"] = y
    for j, d in enumerate(tape.gradient(y, [xc, lo, hi], output_gradients=gc)):
      out[f"per_channel{bits}/grad{j}"] = d
  for j, d in enumerate(
      tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(
          gc_special, xc, lo, hi, num_bits=8, narrow_range=True)):
    out[f"per_channel/gradient_fn{j}"] = d
  return out


@pytest.mark.parametrize("dt", ALL_DTYPES, ids=dtype_name)
def test_every_function_matches_eager(dt):
  rng = rng_for("xla-every", dtype_name(dt))
  xq = tf.constant(_qdq_inputs(dt))
  xf = tf.constant(_fake_quant_inputs(dt))
  # Upstream gradients with inf/NaN/-0 entries, and finite ones (for the
  # values of the sums).
  gq = tf.constant(_gradients_like(xq.numpy(), rng))
  gf = tf.constant(_gradients_like(xf.numpy(), rng, specials=False))
  gf_special = tf.constant(_gradients_like(xf.numpy(), rng))

  def everything(xq, gq, xf, gf, gf_special):
    out = _qdq_cases(xq, gq, dt)
    out.update(_fake_quant_cases(xf, gf, gf_special, dt))
    return out

  args = (xq, gq, xf, gf, gf_special)
  _assert_all_same(everything(*args), _jit(everything)(*args), dtype_name(dt))


def test_dispatch_happens_only_under_xla():
  seen = {}

  def probe():
    seen["xla"] = _xla.in_xla_context()
    return tf.constant(0.0)

  _jit(probe)()
  assert seen["xla"] is True
  tf.function(probe)()
  assert seen["xla"] is False
  probe()
  assert seen["xla"] is False

  @tf.function
  def inner():
    return probe()

  _jit(inner)()  # a plain tf.function nested in an XLA one is compiled too
  assert seen["xla"] is True

  # The graph XLA compiles holds no TfQdq> op; the plain graph does.
  fn = lambda x: tf_qdq.fake_quant_with_min_max_vars(x, -1.0, 1.0)
  spec = tf.TensorSpec([3], tf.float32)
  plain = tf.function(fn).get_concrete_function(spec).graph
  xla = _jit(fn).get_concrete_function(spec).graph
  assert any(op.type.startswith("TfQdq>") for op in plain.get_operations())
  assert not any(op.type.startswith("TfQdq>") for op in xla.get_operations())


def test_mixed_sign_zeros_in_a_data_range():
  """Without a given range, the sign of a zero maximum decides the sign of the
  zero outputs (unsigned grids, or all-zero data): the kernel's maximum is +0
  when the data hold a +0, in any scan order (blocks of 64Ki elements, lanes,
  runs of the inner dimension per channel)."""
  rng = rng_for("xla-zeros")
  cases = {}
  for n in (5, 40, 70000, 131075):
    for positive in (False, True):
      x = -np.abs(rng.standard_normal(n)).astype(np.float32)
      zeros = rng.choice(n, size=min(n, 40), replace=False)
      x[zeros] = -0.0
      if positive:
        x[zeros.max()] = 0.0  # one +0, as late as possible
      cases[f"neg{n}_{positive}"] = x
      cases[f"zeros{n}_{positive}"] = np.where(
          rng.random(n) < 0.5, np.float32(-0.0), np.float32(0.0))
  per_channel = {  # axis 1 of [outer, depth, inner]: inner 1, 7, 80; depth 1
      "inner1": (rng.integers(0, 2, (300, 4)), 1),
      "inner7": (rng.integers(0, 2, (9, 4, 7)), 1),
      "inner80": (rng.integers(0, 2, (5, 3, 80)), 1),
      "depth1": (rng.integers(0, 2, (3, 1, 70)), 1),
  }

  def run(**xs):
    out = {}
    for name, x in xs.items():
      if name in per_channel:
        axis = per_channel[name][1]
        depth = x.shape[axis]
        for signed in (True, False):
          out[f"{name}/{signed}"] = tf_qdq.quantize_and_dequantize_v4(
              x, tf.zeros([depth]), tf.zeros([depth]), signed_input=signed,
              axis=axis)
        continue
      for signed in (True, False):
        out[f"{name}/{signed}"] = tf_qdq.quantize_and_dequantize_v4(
            x, 0.0, 0.0, signed_input=signed)
    return out

  xs = {k: tf.constant(v) for k, v in cases.items()}
  for name, (bits_, _) in per_channel.items():
    xs[name] = tf.constant(np.where(bits_ == 1, np.float32(-0.0),
                                    np.float32(0.0)))
  eager = run(**xs)
  jitted = _jit(run)(**xs)
  _assert_all_same(eager, jitted, "mixed-sign zeros")
  # The cases differ: the sign of zero really depends on the scan order.
  assert any(np.signbit(eager[k].numpy()).any() for k in eager)
  assert any(not np.signbit(eager[k].numpy()).all() for k in eager)


def test_large_sums_and_dynamic_shapes():
  """Sums over more than one combine row (> 2^20 elements per tensor, > 2^16
  rows per channel) and inputs whose shapes are unknown when traced."""
  rng = rng_for("xla-large")
  x = tf.constant(rng.uniform(-1.2, 1.2, 1_100_003).astype(np.float32))
  g = tf.constant(rng.standard_normal(1_100_003).astype(np.float32))
  xc = tf.constant(rng.uniform(-1.5, 1.5, (70_001, 3)).astype(np.float32))
  gc = tf.constant(rng.standard_normal((70_001, 3)).astype(np.float32))
  lo, hi = tf.constant([-1.0, -0.5, -1.2]), tf.constant([1.0, 0.7, 0.1])

  def sums(g, x, gc, xc):
    out = dict(zip(("vars", "vars_min", "vars_max"),
                   tf_qdq.fake_quant_with_min_max_vars_gradient(g, x, -1.0,
                                                                0.9)))
    out.update(zip(("pc", "pc_min", "pc_max"),
                   tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(
                       gc, xc, lo, hi, num_bits=5)))
    out["qdq_data"] = tf_qdq.quantize_and_dequantize_v4(x, 0.0, 0.0)
    out["qdq_axis"] = tf_qdq.quantize_and_dequantize_v4(
        xc, tf.zeros([3]), tf.zeros([3]), axis=1, num_bits=3)
    return out

  eager = sums(g, x, gc, xc)
  _assert_all_same(eager, _jit(sums)(g, x, gc, xc), "static shapes")
  flat, columns = tf.TensorSpec([None]), tf.TensorSpec([None, 3])
  dynamic = _jit(sums, input_signature=[flat, flat, columns, columns])
  _assert_all_same(eager, dynamic(g, x, gc, xc), "dynamic shapes")


def test_attribute_errors_raise_when_traced():
  x = tf.constant([0.5, 1.5], tf.float32)
  cases = [
      (lambda: tf_qdq.fake_quant_with_min_max_vars(x, -1.0, 1.0, num_bits=17),
       "num_bits must be between 2 and 16, inclusive"),
      (lambda: tf_qdq.fake_quant_with_min_max_args(x, min=1.0, max=1.0),
       "min has to be smaller than max"),
      (lambda: tf_qdq.quantize_and_dequantize_v4(x, -1.0, 1.0, num_bits=62),
       "num_bits is out of range: 62 with signed_input_ 1"),
      (lambda: tf_qdq.quantize_and_dequantize_v4(x, [-1.0], [1.0],
                                                 range_given=True),
       "input_min must be a scalar."),
      (lambda: tf_qdq.fake_quant_with_min_max_vars_per_channel(
          tf.reshape(x, [1, 2]), [-1.0], [1.0]),
       "min has incorrect size, expected 2 was 1"),
  ]
  for fn, message in cases:
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
      fn()  # eager: the kernel's check
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
      _jit(fn)()  # XLA: the same check, when the function is traced


def test_empty_and_scalar_inputs():
  def run(empty, scalar, columns):
    out = {}
    for name, x in (("empty", empty), ("scalar", scalar), ("columns", columns)):
      for j, d in enumerate(tf_qdq.fake_quant_with_min_max_vars_gradient(
          x, x, -1.0, 1.0)):
        out[f"{name}/vars_gradient{j}"] = d
      out[f"{name}/qdq"] = tf_qdq.quantize_and_dequantize_v4(x, 0.0, 0.0)
    for j, d in enumerate(
        tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(
            columns, columns, -tf.ones([3], tf.float16),
            tf.ones([3], tf.float16))):
      out[f"per_channel_gradient{j}"] = d
    return out

  args = (tf.zeros([0], tf.float16), tf.constant(-0.0, tf.float16),
          tf.zeros([0, 3], tf.float16))
  _assert_all_same(run(*args), _jit(run)(*args), "empty and scalar")


# ---- issue 13: hardening -------------------------------------------------------


def _same(eager, jitted, what):
  """_assert_all_same for a tensor or a tuple of tensors."""
  as_dict = lambda r: dict(enumerate(r if isinstance(r, (tuple, list))  # noqa: E731
                                     else [r]))
  _assert_all_same(as_dict(eager), as_dict(jitted), what)


def _unknown(*specs):
  return [tf.TensorSpec(None, dt) for dt in specs]


@pytest.mark.parametrize("fn, args, node", [
    # FakeQuantWithMinMaxVars with [1, 1] ranges: the kernel's rank check.
    (tf_qdq.fake_quant_with_min_max_vars,
     (tf.zeros([63]), tf.zeros([1, 1]), tf.ones([1, 1])),
     "m(in|ax)_must_be_rank_0"),
    (lambda g, x: tf_qdq.fake_quant_with_min_max_args_gradient(g, x),
     (tf.zeros([6, 1]), tf.zeros([1, 6])),
     "must_have_the_same_size_and_shape"),
    (tf_qdq.fake_quant_with_min_max_vars_gradient,
     (tf.zeros([2, 3]), tf.zeros([3, 2]), tf.constant(-1.0), tf.constant(1.0)),
     "gradient_and_input_must_be_the_same_size"),
    (tf_qdq.fake_quant_with_min_max_vars_per_channel,
     (tf.constant(1.0), tf.zeros([1]), tf.ones([1])),
     "inputs_must_be_at_least_rank_1"),
    (tf_qdq.fake_quant_with_min_max_vars_per_channel,
     (tf.zeros([2, 3]), tf.zeros([2]), tf.ones([2])),
     "m(in|ax)_has_incorrect_size"),
    (lambda g, x, a, b: tf_qdq.quantize_and_dequantize_v4_grad(g, x, a, b,
                                                              axis=0),
     (tf.zeros([3, 4]), tf.zeros([3, 4]), tf.zeros([1]), tf.ones([1])),
     "m(in|ax)_has_incorrect_size"),
    (lambda x, a, b: tf_qdq.quantize_and_dequantize_v4(x, a, b,
                                                       range_given=True),
     (tf.zeros([3]), tf.zeros([1]), tf.ones([1])),
     "input_m(in|ax)_must_be_a_scalar"),
])
def test_unknown_shapes_are_checked_when_compiled(fn, args, node):
  """Where the kernels raise, so does the lowering with shapes unknown at
  trace time: XLA drops assertions, so the checks are shape ops that fail
  when XLA compiles for the actual shapes, named after the kernel's message."""
  with pytest.raises(tf.errors.InvalidArgumentError):
    fn(*args)  # the kernel
  jitted = _jit(fn, input_signature=_unknown(*(a.dtype for a in args)))
  with pytest.raises(tf.errors.InvalidArgumentError, match=node):
    jitted(*args)


def test_unknown_shapes_still_compute_valid_calls():
  x, g = tf.constant([[0.3, -1.2, 0.7]]), tf.constant([[1.0, -2.0, 3.0]])
  mn, mx = tf.constant([-1.0, -0.5, 0.0]), tf.constant([1.0, 0.5, 0.6])
  cases = [
      (tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient,
       (g, x, mn, mx)),
      (lambda g, x, a, b: tf_qdq.quantize_and_dequantize_v4_grad(g, x, a, b,
                                                                axis=1),
       (g, x, mn, mx)),
      (lambda x, a, b: tf_qdq.quantize_and_dequantize_v4(x, a, b,
                                                         range_given=True,
                                                         axis=1), (x, mn, mx)),
      (tf_qdq.fake_quant_with_min_max_vars,
       (x, tf.constant(-1.0), tf.constant(1.0))),
  ]
  for fn, args in cases:
    jitted = _jit(fn, input_signature=_unknown(*(a.dtype for a in args)))
    _same(fn(*args), jitted(*args), "unknown shapes")


def test_static_size_one_range_is_rejected():
  g = x = tf.zeros([3, 4])
  fn = lambda: tf_qdq.quantize_and_dequantize_v4_grad(  # noqa: E731
      g, x, tf.zeros([1]), tf.ones([1]), axis=0)
  for f in (fn, _jit(fn)):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="min has incorrect size, expected 3 was 1"):
      f()


@pytest.mark.parametrize("kwargs", [
    dict(signed_input=None), dict(num_bits=None), dict(round_mode=None),
    dict(round_mode=b"HALF_UP"), dict(narrow_range=None, range_given=None,
                                      axis=None)])
def test_attrs_are_read_alike_on_every_path(kwargs):
  x = tf.constant([-0.504, 0.504, 0.3])
  fn = lambda x: tf_qdq.quantize_and_dequantize_v4(x, 0.0, 1.0, **kwargs)  # noqa: E731
  eager = fn(x)
  _same(eager, tf.function(fn)(x), "graph")
  _same(eager, _jit(fn)(x), "xla")


@pytest.mark.parametrize("fn", [
    lambda x: tf_qdq.fake_quant_with_min_max_args(x, min=None, max=None),
    lambda x: tf_qdq.fake_quant_with_min_max_vars(x, -1.0, 1.0, num_bits=None,
                                                  narrow_range=None),
])
def test_none_fake_quant_attrs_are_defaults(fn):
  x = tf.constant([-7.0, 0.3, 5.5])
  _same(fn(x), _jit(fn)(x), "xla")


@pytest.mark.parametrize("value", [1, "true", np.bool_(True)])
def test_non_bool_bool_attrs_raise_on_every_path(value):
  fn = lambda x: tf_qdq.quantize_and_dequantize_v4(x, 0.0, 1.0,  # noqa: E731
                                                  signed_input=value)
  x = tf.constant([0.5])
  for f in (fn, tf.function(fn), _jit(fn)):
    with pytest.raises(TypeError, match="Expected bool for argument "
                       "'signed_input'"):
      f(x)


def test_bfloat16_denormal_ranges_are_flushed():
  x = tf.constant([-0.5, 0.3, 2.0], tf.bfloat16)
  # -9.18e-41: the negative bfloat16 denormal of least magnitude.
  mn = tf.bitcast(tf.constant(0x8001, tf.uint16), tf.bfloat16)
  mx = tf.constant(0.0, tf.bfloat16)
  for fn, args in ((tf_qdq.fake_quant_with_min_max_vars, (x, mn, mx)),
                   (tf_qdq.fake_quant_with_min_max_vars_gradient,
                    (x, x, mn, mx))):
    _same(fn(*args), _jit(fn)(*args), "bfloat16 denormal range")
  np.testing.assert_array_equal(
      tf_qdq.fake_quant_with_min_max_vars(x, mn, mx).numpy(), [0, 0, 0])


def test_args_range_check_flushes_denormal_attrs():
  fn = lambda x: tf_qdq.fake_quant_with_min_max_args(  # noqa: E731
      x, min=-1e-45, max=1e-45)
  x = tf.zeros([3])
  for f in (fn, _jit(fn)):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="min has to be smaller than max"):
      f(x)


@pytest.mark.parametrize("dt", [tf.float64, tf.float32])
def test_args_denormal_attrs_match_the_kernel(dt):
  x = tf.constant([-1e-39, 0.0, 0.3, 2e-45, 0.7], dt)
  fn = lambda x: tf_qdq.fake_quant_with_min_max_args(  # noqa: E731
      x, min=-1e-40, max=1.0)
  _same(fn(x), _jit(fn)(x), "denormal attr")


_MEMORY_PROBE = """
import resource, sys
import numpy as np
import tensorflow as tf
import tf_qdq
rng = np.random.default_rng(13)
x = tf.constant(rng.uniform(-1, 1, [1, 400000]), tf.float32)
g = tf.constant(rng.normal(size=[1, 400000]), tf.float32)
mn, mx = -0.5 * tf.ones([400000]), 0.5 * tf.ones([400000])
fn = tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient
eager = fn(g, x, mn, mx)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
jitted = tf.function(fn, jit_compile=True)(g, x, mn, mx)
grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
same = all(np.array_equal(a.numpy().view(np.uint32), b.numpy().view(np.uint32))
           for a, b in zip(eager, jitted))
print(f"grown_mb={grown_mb:.0f} same={same}")
"""


def test_per_channel_gradient_memory_is_bounded():
  """[1, 400000]: the lowering once padded every channel to 256 rows of
  float64, for both sums (+3.3 GB); now a one-row chunk is not padded. Run in
  a fresh process, so that the peak it measures is this computation's."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE],
                        capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  result = dict(item.split("=") for item in done.stdout.split())
  assert result["same"] == "True", "[1, 400000] sums differ under XLA"
  assert float(result["grown_mb"]) < 600, f"peak memory grew by {result}"


def test_xla_lowering_warns_once_where_a_gpu_is_visible(monkeypatch):
  """XLA:GPU's bits are unverified (no GPU was lent to check them)."""
  real = tf.config.list_logical_devices
  monkeypatch.setattr(_xla, "_GPU_WARNED", [])
  monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: (
      ["fake GPU"] if kind == "GPU" else real(kind)))
  fn = _jit(lambda x: tf_qdq.fake_quant_with_min_max_vars(x, -1.0, 1.0))
  with pytest.warns(RuntimeWarning, match="XLA:GPU"):
    fn(tf.constant([0.5]))
  import warnings  # pylint: disable=import-outside-toplevel
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    _jit(lambda x: tf_qdq.fake_quant_with_min_max_args(x))(tf.constant([0.5]))
