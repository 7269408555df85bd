"""Shared helpers of the bit-parity tests (test_parity_*.py, test_sums.py).

* assert_same_bits: bit-level comparison with a readable first mismatch.
* reference_qdq_v4: TensorFlow 2.21's QuantizeAndDequantizeV4 as the parity
  rules define it for every dtype (16-bit: TF's float32 op on the upcast inputs,
  cast back; per-channel with a given range: TF's per-tensor op slice by slice).
* tf_fake_quant / numpy_fake_quant: TF's float32 FakeQuant kernels, and an
  independent NumPy re-statement of their formulas (spec 4.3, 4.4, 5.3, 6) that
  runs in float32 (validated against TF) or float64 (the float64 reference).
* correctly_rounded / assert_within_one_ulp: checks of the min/max backprop sums.

Only `tf_qdq` and TensorFlow are imported: the tests run against the source
tree or an installed wheel alike.
"""
import fractions
import math
import zlib

import numpy as np
import tensorflow as tf

import tf_qdq

F16 = np.dtype(np.float16)
BF16 = np.dtype(tf.bfloat16.as_numpy_dtype)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
ALL_DTYPES = (F32, F64, F16, BF16)
SIXTEEN_BIT = (F16, BF16)

_UINT_OF_SIZE = {2: np.uint16, 4: np.uint32, 8: np.uint64}
_DTYPE_NAMES = {F16: "half", BF16: "bfloat16", F32: "float32", F64: "float64"}


def dtype_name(dt):
  return _DTYPE_NAMES[np.dtype(dt)]


def compute_dtype(dt):
  """The dtype TF's reference kernel runs in for storage dtype `dt`."""
  return F32 if np.dtype(dt) in SIXTEEN_BIT else np.dtype(dt)


def rng_for(*key):
  """A NumPy Generator seeded from a test's parameters (stable across runs)."""
  return np.random.default_rng(zlib.crc32(repr(key).encode()))


def to_numpy(a):
  if isinstance(a, (tf.Tensor, tf.Variable)):
    return a.numpy()
  return np.asarray(a)


def bits(a):
  """The raw bit patterns of a float array (uint16/32/64)."""
  a = np.array(to_numpy(a), order="C")
  return a.view(_UINT_OF_SIZE[a.dtype.itemsize])


def isnan(a):
  a = to_numpy(a)
  if a.dtype in SIXTEEN_BIT:
    a = a.astype(np.float32)
  return np.isnan(a)


def _describe(a, b, idx):
  width = a.dtype.itemsize * 2
  return f"{a[idx]!r} (0x{int(b[idx]):0{width}x})"


def assert_same_bits(ours, theirs, what="", inputs=None):
  """Asserts identical dtype, shape and bits. NaN positions must agree, with
  any payload; every other value, ±0 included, must have the same bits.

  `inputs`: optional arrays of the same shape (e.g. {"x": x}) whose values at
  the first mismatch are added to the message.
  """
  o = np.array(to_numpy(ours), order="C")
  t = np.array(to_numpy(theirs), order="C")
  prefix = f"{what}: " if what else ""
  assert o.dtype == t.dtype, f"{prefix}dtype {o.dtype} != {t.dtype}"
  assert o.shape == t.shape, f"{prefix}shape {o.shape} != {t.shape}"
  o_nan, t_nan = isnan(o), isnan(t)
  o_bits, t_bits = bits(o), bits(t)
  bad = (o_nan != t_nan) | (~o_nan & (o_bits != t_bits))
  if not bad.any():
    return
  idx = tuple(int(i) for i in np.argwhere(bad)[0])
  msg = (f"{prefix}{int(bad.sum())} of {bad.size} elements differ; first at "
         f"index {idx}: ours={_describe(o, o_bits, idx)} "
         f"theirs={_describe(t, t_bits, idx)}")
  for name, arr in (inputs or {}).items():
    arr = np.array(to_numpy(arr), order="C")
    if arr.shape == o.shape:
      msg += f"; {name}={_describe(arr, bits(arr), idx)}"
    elif arr.size == 1:
      msg += f"; {name}={_describe(arr.reshape(()), bits(arr.reshape(())), ())}"
  raise AssertionError(msg)


def cast(a, dt):
  """Casts with TensorFlow (tf.cast), returns NumPy."""
  return tf.cast(tf.constant(to_numpy(a)), tf.as_dtype(np.dtype(dt))).numpy()


# ---- QuantizeAndDequantizeV4 -------------------------------------------------


def qdq_bounds(signed_input, num_bits, narrow_range):
  """(qmin, qmax) of QDQ as Python ints (spec 2.4)."""
  if signed_input:
    half = 1 << (num_bits - 1)
    return (-half + 1 if narrow_range else -half), half - 1
  return 0, (1 << num_bits) - 1


def _tf_qdq_v4_native(x, mn, mx, axis, attrs):
  return tf.raw_ops.QuantizeAndDequantizeV4(
      input=x, input_min=mn, input_max=mx, axis=axis, **attrs)


def reference_qdq_v4(x, input_min, input_max, axis=-1, **attrs):
  """TF 2.21's QuantizeAndDequantizeV4 as parity is defined for x's dtype.

  attrs: signed_input, num_bits, range_given, round_mode, narrow_range.
  * float32/float64: TF's CPU kernel;
  * half/bfloat16: TF's float32 kernel on the upcast inputs (min and max
    included), cast back to the 16-bit type with tf.cast;
  * axis >= 0 with range_given (TF 2.21 rejects every input there): TF's
    per-tensor op with range_given, applied to each slice along the axis with
    that channel's scalar min/max, and restacked.
  """
  x = np.asarray(x)
  dt = x.dtype
  cdt = tf.as_dtype(compute_dtype(dt))
  xt = tf.cast(tf.constant(x), cdt)
  mnt = tf.cast(tf.constant(np.asarray(input_min, dt)), cdt)
  mxt = tf.cast(tf.constant(np.asarray(input_max, dt)), cdt)
  if attrs.get("range_given", False) and axis != -1:
    depth = x.shape[axis]
    if depth == 0 or x.size == 0:
      out = tf.zeros(x.shape, cdt)
    else:
      slices = tf.unstack(xt, axis=axis)
      mins = tf.unstack(mnt)
      maxs = tf.unstack(mxt)
      out = tf.stack([
          _tf_qdq_v4_native(s, lo, hi, -1, attrs)
          for s, lo, hi in zip(slices, mins, maxs)
      ], axis=axis)
  else:
    out = _tf_qdq_v4_native(xt, mnt, mxt, axis, attrs)
  return tf.cast(out, tf.as_dtype(dt)).numpy()


def reference_qdq_v4_grad(g, x, input_min, input_max, axis=-1):
  """TF 2.21's QuantizeAndDequantizeV4Grad (16-bit: float32 op on upcasts)."""
  x = np.asarray(x)
  dt = x.dtype
  cdt = tf.as_dtype(compute_dtype(dt))
  args = [tf.cast(tf.constant(np.asarray(a, dt)), cdt)
          for a in (g, x, input_min, input_max)]
  outs = tf.raw_ops.QuantizeAndDequantizeV4Grad(
      gradients=args[0], input=args[1], input_min=args[2], input_max=args[3],
      axis=axis)
  return [tf.cast(o, tf.as_dtype(dt)).numpy() for o in outs]


# ---- FakeQuant: TF's float32 kernels -------------------------------------------

FAKE_QUANT_KINDS = ("args", "vars", "per_channel")


def tf_fake_quant(kind, x, mn, mx, num_bits, narrow_range):
  """TF's float32 FakeQuant forward. For "args", mn/mx are the float attrs."""
  q = tf.quantization
  if kind == "args":
    return q.fake_quant_with_min_max_args(
        x, min=float(mn), max=float(mx), num_bits=num_bits,
        narrow_range=narrow_range).numpy()
  fn = (q.fake_quant_with_min_max_vars if kind == "vars"
        else q.fake_quant_with_min_max_vars_per_channel)
  return fn(x, mn, mx, num_bits=num_bits, narrow_range=narrow_range).numpy()


def tf_fake_quant_gradient(kind, g, x, mn, mx, num_bits, narrow_range):
  """TF's float32 FakeQuant gradient: a list of 1 (args) or 3 arrays."""
  q = tf.quantization
  if kind == "args":
    return [q.fake_quant_with_min_max_args_gradient(
        g, x, min=float(mn), max=float(mx), num_bits=num_bits,
        narrow_range=narrow_range).numpy()]
  fn = (q.fake_quant_with_min_max_vars_gradient if kind == "vars"
        else q.fake_quant_with_min_max_vars_per_channel_gradient)
  return [o.numpy() for o in
          fn(g, x, mn, mx, num_bits=num_bits, narrow_range=narrow_range)]


def ours_fake_quant(kind, x, mn, mx, num_bits, narrow_range):
  x = tf.constant(np.asarray(x))
  if kind == "args":
    return tf_qdq.fake_quant_with_min_max_args(
        x, min=float(mn), max=float(mx), num_bits=num_bits,
        narrow_range=narrow_range).numpy()
  fn = (tf_qdq.fake_quant_with_min_max_vars if kind == "vars"
        else tf_qdq.fake_quant_with_min_max_vars_per_channel)
  return fn(x, tf.constant(mn), tf.constant(mx), num_bits=num_bits,
            narrow_range=narrow_range).numpy()


def ours_fake_quant_gradient(kind, g, x, mn, mx, num_bits, narrow_range):
  g = tf.constant(np.asarray(g))
  x = tf.constant(np.asarray(x))
  if kind == "args":
    return [tf_qdq.fake_quant_with_min_max_args_gradient(
        g, x, min=float(mn), max=float(mx), num_bits=num_bits,
        narrow_range=narrow_range).numpy()]
  fn = (tf_qdq.fake_quant_with_min_max_vars_gradient if kind == "vars"
        else tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient)
  return [o.numpy() for o in fn(g, x, tf.constant(mn), tf.constant(mx),
                                num_bits=num_bits, narrow_range=narrow_range)]


def tf_fake_quant_16bit(kind, x, mn, mx, num_bits, narrow_range):
  """Rule for 16-bit types: TF's float32 op on the upcast inputs, tf.cast back.
  For "args" the float attrs are used as they are."""
  dt = np.asarray(x).dtype
  up = lambda a: cast(np.asarray(a, dt), F32)
  if kind != "args":
    mn, mx = up(mn), up(mx)
  return cast(tf_fake_quant(kind, up(x), mn, mx, num_bits, narrow_range), dt)


def tf_fake_quant_gradient_16bit(kind, g, x, mn, mx, num_bits, narrow_range):
  dt = np.asarray(x).dtype
  up = lambda a: cast(np.asarray(a, dt), F32)
  if kind != "args":
    mn, mx = up(mn), up(mx)
  outs = tf_fake_quant_gradient(kind, up(g), up(x), mn, mx, num_bits,
                                narrow_range)
  return [cast(o, dt) for o in outs]


# ---- FakeQuant: independent NumPy re-statement ------------------------------------
#
# TensorFlow runs CPU kernels with flush-to-zero and denormals-are-zero set in
# MXCSR (port::ScopedFlushDenormal, in eager execution and in its thread pool),
# and tf_qdq's kernels run inside the same executor. So every arithmetic step
# below treats subnormal operands as ±0 and flushes subnormal results to ±0.
# Without this, float32 ranges such as [-2e-38, 3e-38] (subnormal scale) or
# subnormal inputs do not match TF. Plain copies (the min == max == 0 gradient
# pass-through) keep subnormals.


def _flush(a, dt):
  """Subnormal -> zero of the same sign (NaN and inf pass)."""
  a = np.asarray(a, dt)
  return np.where(np.abs(a) < np.finfo(dt).tiny, np.copysign(dt.type(0), a),
                  a).astype(dt)


class _FtzArith:
  """IEEE operations in dtype dt with DAZ on the operands and FTZ on results."""

  def __init__(self, dt):
    self.dt = np.dtype(dt)

  def __call__(self, a):  # DAZ on an input
    return _flush(a, self.dt)

  def add(self, a, b):
    return _flush(self(a) + self(b), self.dt)

  def sub(self, a, b):
    return _flush(self(a) - self(b), self.dt)

  def mul(self, a, b):
    return _flush(self(a) * self(b), self.dt)

  def div(self, a, b):
    return _flush(self(a) / self(b), self.dt)

  def floor(self, a):
    return _flush(np.floor(self(a)), self.dt)

  def neg(self, a):
    return -self(a)


def _min_prefer_left(a, b):
  return np.where(b < a, b, a)


def _max_prefer_left(a, b):
  return np.where(a < b, b, a)


def _round_half_away_from_zero(z):
  """std::round (roundf), exactly, in z's own dtype."""
  t = np.trunc(z)
  frac = np.abs(z - t)  # exact: the fractional part is representable
  return np.where(frac >= 0.5, t + np.copysign(np.ones_like(z), z), t)


class Nudged:
  """Spec 4.3, evaluated in dtype `dt` (every step rounded to dt, FTZ/DAZ)."""

  def __init__(self, mn, mx, num_bits, narrow_range, dt):
    dt = np.dtype(dt)
    f = _FtzArith(dt)
    quant_min = 1 if narrow_range else 0
    quant_max = (1 << num_bits) - 1
    qminf, qmaxf = dt.type(quant_min), dt.type(quant_max)
    mn = f(np.asarray(mn, dt))
    mx = f(np.asarray(mx, dt))
    with np.errstate(all="ignore"):
      self.scale = f.div(f.sub(mx, mn), f.sub(qmaxf, qminf))
      self.inv_scale = f.div(f.sub(qmaxf, qminf), f.sub(mx, mn))
      zpf = f.sub(qminf, f.div(mn, self.scale))
      zp = np.where(
          zpf < qminf, qminf,
          np.where(zpf > qmaxf, qmaxf,
                   # NaN: TF casts NaN to uint16 (x86 gives 0), so does tf-qdq.
                   np.where(np.isnan(zpf), dt.type(0),
                            _round_half_away_from_zero(zpf)))).astype(dt)
      self.zero_point = zp
      self.nudged_min = f.mul(f.sub(qminf, zp), self.scale)
      self.nudged_max = f.mul(f.sub(qmaxf, zp), self.scale)
      self.quant_zero = f.floor(
          f.add(f.mul(f.neg(self.nudged_min), self.inv_scale), dt.type(0.5)))
    self.all_zero = (mn == 0) & (mx == 0)
    self.dtype = dt


def _fake_quant_range(kind, mn, mx, dt):
  """min/max in dt: the float attrs of Args, as float32, widened."""
  if kind == "args":
    return (np.asarray(np.float32(mn), dt), np.asarray(np.float32(mx), dt))
  return np.asarray(mn, dt), np.asarray(mx, dt)


def numpy_fake_quant(kind, x, mn, mx, num_bits, narrow_range):
  """FakeQuant forward in x's dtype (float32 or float64). Spec 4.4 and 6:
  Vars divides by scale, Args and PerChannel multiply by inv_scale; Vars and
  PerChannel output +0 where min == max == 0."""
  x = np.asarray(x)
  dt = x.dtype
  f = _FtzArith(dt)
  mn, mx = _fake_quant_range(kind, mn, mx, dt)
  n = Nudged(mn, mx, num_bits, narrow_range, dt)
  with np.errstate(all="ignore"):
    c = _max_prefer_left(_min_prefer_left(f(x), n.nudged_max), n.nudged_min)
    s = f.sub(c, n.nudged_min)
    t = f.div(s, n.scale) if kind == "vars" else f.mul(s, n.inv_scale)
    out = f.mul(f.floor(f.add(f.sub(t, n.quant_zero), dt.type(0.5))), n.scale)
  if kind != "args":
    out = np.where(n.all_zero, dt.type(0), out).astype(dt)
  return out


def numpy_fake_quant_gradient(kind, g, x, mn, mx, num_bits, narrow_range):
  """(backprops_wrt_input, terms_min, terms_max) in x's dtype. Spec 5.3: the
  masks use the nudged range and are multiplications; terms_* are the
  per-element addends of the min/max sums (g * [x < nudged_min], ...)."""
  x = np.asarray(x)
  dt = x.dtype
  f = _FtzArith(dt)
  g = np.asarray(g, dt)
  mn, mx = _fake_quant_range(kind, mn, mx, dt)
  n = Nudged(mn, mx, num_bits, narrow_range, dt)
  xd = f(x)
  with np.errstate(all="ignore"):
    between = ((xd >= n.nudged_min) & (xd <= n.nudged_max)).astype(dt)
    below = (xd < n.nudged_min).astype(dt)
    above = (xd > n.nudged_max).astype(dt)
    wrt_input = f.mul(g, between)
    terms_min, terms_max = f.mul(g, below), f.mul(g, above)
  if kind != "args":
    zero = dt.type(0)
    wrt_input = np.where(n.all_zero, g, wrt_input).astype(dt)  # a copy
    terms_min = np.where(n.all_zero, zero, terms_min).astype(dt)
    terms_max = np.where(n.all_zero, zero, terms_max).astype(dt)
  return wrt_input, terms_min, terms_max


def _columns(t):
  """[rows, depth] view of a per-channel tensor (channel = last axis)."""
  if t.ndim == 0:
    return t.reshape(1, 1)
  return t.reshape(int(np.prod(t.shape[:-1])), t.shape[-1])


def _exact_sum(values):
  if np.isfinite(values).all():
    return math.fsum(values)
  return float(np.sum(values))  # NaN, or ±inf, or NaN for inf + -inf


def exact_sums(terms, per_channel):
  """The exact sum of the terms rounded once to float64 (math.fsum), per
  channel: of each column of the last axis (an array of shape [depth])."""
  t = np.asarray(terms, np.float64)
  if not per_channel:
    return np.float64(_exact_sum(t.ravel()))
  cols = _columns(t)
  return np.array([_exact_sum(cols[:, c]) for c in range(cols.shape[1])],
                  np.float64)


# ---- Rounding of exact sums --------------------------------------------------------

# (significand bits, exponent of the smallest subnormal's ulp, overflow threshold
# exponent: values >= 2**emax_plus_1 - half an ulp round to inf)
_FORMATS = {
    F16: (11, -24, 16),
    BF16: (8, -133, 128),
    F32: (24, -149, 128),
    F64: (53, -1074, 1024),
}


def correctly_rounded(value, dt):
  """The float64 `value` rounded once, to nearest even, to dtype dt: computed
  with exact rationals (no double rounding through float32)."""
  dt = np.dtype(dt)
  v = float(value)
  if math.isnan(v) or math.isinf(v) or v == 0.0 or dt == F64:
    with np.errstate(over="ignore"):
      return np.asarray(v, F32).astype(dt) if dt != F64 else np.float64(v)
  prec, min_ulp_exp, emax1 = _FORMATS[dt]
  exact = fractions.Fraction(abs(v))
  _, e = math.frexp(abs(v))  # abs(v) = m * 2**e, m in [0.5, 1)
  ulp_exp = max(e - prec, min_ulp_exp)
  q = exact / fractions.Fraction(2) ** ulp_exp
  r = round(q)  # Python rounds Fractions half to even
  rounded = r * fractions.Fraction(2) ** ulp_exp
  if rounded >= fractions.Fraction(2) ** emax1:
    result = math.inf
  else:
    result = float(rounded)  # exact: fits every narrower format
  result = math.copysign(result, v)
  # float64 -> float32 -> dt is exact here (the value is representable).
  with np.errstate(over="ignore"):
    return np.asarray(result, np.float64).astype(F32).astype(dt)


def ulp(value, dt):
  """Spacing of dtype dt at |value|, as a float64 (for finite values)."""
  prec, min_ulp_exp, _ = _FORMATS[np.dtype(dt)]
  v = abs(float(value))
  e = math.frexp(v)[1] if v else min_ulp_exp + prec
  return math.ldexp(1.0, max(e - prec, min_ulp_exp))


def assert_within_one_ulp(ours, exact, dt, what=""):
  """|ours - exact| <= one ulp of dt at `exact` (elementwise), NaN == NaN."""
  ours = np.atleast_1d(to_numpy(ours)).astype(np.float64)
  exact = np.atleast_1d(np.asarray(exact, np.float64))
  assert ours.shape == exact.shape, f"{what}: shape {ours.shape} != {exact.shape}"
  for i, (o, e) in enumerate(zip(ours, exact)):
    if math.isnan(e) or math.isnan(o):
      assert math.isnan(e) and math.isnan(o), f"{what}[{i}]: ours={o!r} exact={e!r}"
      continue
    if math.isinf(e) or math.isinf(o):
      assert o == float(correctly_rounded(e, dt)), f"{what}[{i}]: ours={o!r} exact={e!r}"
      continue
    tol = ulp(e, dt)
    assert abs(o - e) <= tol, (
        f"{what}[{i}]: ours={o!r} differs from the exact sum {e!r} by "
        f"{abs(o - e)!r} > 1 ulp ({tol!r}) of {dtype_name(dt)}")


def assert_double_sum_close(ours, terms, per_channel, what=""):
  """float64 sums: within the worst-case error bound of recursive summation
  (n * 2**-53 * sum|terms|, plus one ulp) of the exact sum."""
  exact = np.atleast_1d(exact_sums(terms, per_channel))
  t = np.abs(np.asarray(terms, np.float64))
  if per_channel:
    t = _columns(t)
    magnitude, n = t.sum(axis=0), t.shape[0]
  else:
    magnitude, n = np.atleast_1d(t.sum()), t.size
  ours = np.atleast_1d(to_numpy(ours)).astype(np.float64)
  for i, (o, e, m) in enumerate(zip(ours, exact, magnitude)):
    if math.isnan(e) or math.isnan(o) or math.isinf(e) or math.isinf(o):
      assert (math.isnan(e) and math.isnan(o)) or o == e, (
          f"{what}[{i}]: ours={o!r} exact={e!r}")
      continue
    tol = n * 2.0 ** -53 * m + ulp(e, F64)
    assert abs(o - e) <= tol, f"{what}[{i}]: ours={o!r} exact={e!r} tol={tol!r}"
