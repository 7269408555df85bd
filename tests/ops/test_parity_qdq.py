"""Bit parity of tf_qdq's QuantizeAndDequantizeV4/V2 and V4Grad with TF 2.21.

Parity (docs/semantics.md, and the project's documented
deviations):
* float32/float64: bit-exact with TF's CPU kernels in this process;
* half/bfloat16: bit-exact with tf.cast(TF's float32 op on the upcast inputs);
* per-channel with range_given=True (TF 2.21 rejects every input): TF's
  per-tensor op applied slice by slice;
* range from data with NaN in it: NaNs are skipped by the min/max reduction
  (TF's Eigen reduction is position dependent, see test_nan_in_data_is_skipped).

The grid is seeded and randomised: every (dtype, num_bits) pair runs all 16
combinations of signed/narrow/range_given/round_mode on fresh random data.
TF runs CPU kernels with flush-to-zero/denormals-are-zero; so do ours (same
executor), and the degenerate cases include subnormal data and ranges.

Documented deviations tested here against their documented semantics: NaN in
a data-derived range is always skipped, and a data-derived zero maximum is +0
whenever a +0 is present (docs/semantics.md D12 and D13).
"""
import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

import tf_qdq
from _parity_util import ALL_DTYPES, BF16, F16, F32, F64, SIXTEEN_BIT
from _parity_util import assert_same_bits, dtype_name, qdq_bounds
from _parity_util import reference_qdq_v4, reference_qdq_v4_grad, rng_for

ROUND_MODES = ("HALF_TO_EVEN", "HALF_UP")
NUM_BITS = tuple(range(1, 17)) + ("edge",)  # edge: 61 signed, 62 unsigned
DTYPE_IDS = [dtype_name(d) for d in ALL_DTYPES]
# Largest power of two of the data magnitudes per dtype (keeps half finite).
_MAX_LOG2 = {F16: 14, BF16: 100, F32: 100, F64: 1000}
_KINDS = ("grid", "random", "positive", "negative", "zero", "const")
_KIND_P = (0.35, 0.33, 0.1, 0.1, 0.06, 0.06)


def _num_bits(num_bits, signed):
  if num_bits == "edge":
    return 61 if signed else 62
  return num_bits


def _attrs(signed, num_bits, narrow, range_given, round_mode):
  return dict(signed_input=signed, num_bits=num_bits, narrow_range=narrow,
              range_given=range_given, round_mode=round_mode)


def _ours_v4(x, mn, mx, axis=-1, **attrs):
  return tf_qdq.quantize_and_dequantize_v4(
      tf.constant(x), tf.constant(mn), tf.constant(mx), axis=axis,
      **attrs).numpy()


def _to_dtype(values, dt):
  with np.errstate(over="ignore"):
    return np.asarray(values, np.float64).astype(np.float32).astype(dt) \
        if dt in SIXTEEN_BIT else np.asarray(values, np.float64).astype(dt)


def _channel_values(rng, dt, n, qmin, qmax, range_given, kind):
  """n values of one tensor or channel (float64, representable in dt) and its
  range (lo, hi). Without a given range the data spans exactly [lo, hi]."""
  top = max(abs(qmin), qmax, 1)
  e = int(rng.integers(-8, 9))
  e = max(e, math.ceil(math.log2(top)) - _MAX_LOG2[dt])
  unit = 2.0 ** -e
  mag = 10.0 ** rng.uniform(-3, 3)
  a, b = abs(rng.normal()) + 0.01, abs(rng.normal()) + 0.01
  if kind == "grid":  # scale is exactly 2**e: grid ties are exact
    lo, hi = qmin * unit, qmax * unit
  elif kind == "random":
    lo, hi = -a * mag, b * mag
  elif kind == "positive":
    lo, hi = a * mag, (a + b) * mag
  elif kind == "negative":
    lo, hi = -(a + b) * mag, -a * mag
  elif kind == "zero":
    lo = hi = 0.0
  else:  # const
    lo = hi = float(rng.choice([-1, 1])) * a * mag
  lo, hi = (float(v) for v in _to_dtype([lo, hi], dt).astype(np.float64))
  lo, hi = min(lo, hi), max(lo, hi)
  width = (hi - lo) or abs(lo) or 1.0
  if range_given:
    values = rng.uniform(lo - width / 4, hi + width / 4, n)
  else:
    values = rng.uniform(lo, hi, n) if hi > lo else np.full(n, lo)
  specials = [lo, hi]
  if kind == "grid" and qmax > qmin:
    k = rng.integers(qmin, qmax, size=8, endpoint=False)
    specials += list((k + 0.5) * unit)
  if range_given or lo <= 0.0 < hi:
    specials += [0.0, -0.0]
  elif hi == 0.0:
    # The data's max is a zero. Its sign decides the sign of every output
    # (scale = T_MAX, inverse = max / qmax), and TF's reduction picks between
    # +0 and -0 by position: see test_data_range_signed_zero_tie. Use one sign.
    zero = float(rng.choice([0.0, -0.0]))
    values = np.where(values == 0.0, zero, values)
    lo = zero if lo == 0.0 else lo
    hi = zero
    specials = [lo, hi]
  if range_given:
    specials += [math.nan, math.inf, -math.inf, lo - width, hi + width]
  if n > 0:
    pos = rng.permutation(n)
    keep = 2 if not range_given else 0  # lo and hi first, always placed
    head, tail = specials[:keep], list(rng.permutation(specials[keep:]))
    for p, v in zip(pos, head + tail):
      values[p] = v
  values = _to_dtype(values, dt).astype(np.float64)
  return values, lo, hi


def _make_tensor(rng, dt, shape, axis, qmin, qmax, range_given):
  """x (dtype dt), min and max (scalars, or [depth] for axis >= 0)."""
  shape = tuple(shape)
  kinds = []
  if axis == -1:
    kind = str(rng.choice(_KINDS, p=_KIND_P))
    values, lo, hi = _channel_values(rng, dt, int(np.prod(shape)), qmin, qmax,
                                     range_given, kind)
    x = values.reshape(shape)
    mn, mx = np.asarray(lo), np.asarray(hi)
    kinds.append(kind)
  else:
    depth = shape[axis]
    x = np.zeros(shape)
    mn, mx = np.zeros(depth), np.zeros(depth)
    per_channel = int(np.prod(shape)) // depth if depth else 0
    for c in range(depth):
      kind = str(rng.choice(_KINDS, p=_KIND_P))
      values, mn[c], mx[c] = _channel_values(rng, dt, per_channel, qmin, qmax,
                                             range_given, kind)
      index = [slice(None)] * len(shape)
      index[axis] = c
      x[tuple(index)] = values.reshape(x[tuple(index)].shape)
      kinds.append(kind)
  return _to_dtype(x, dt), _to_dtype(mn, dt), _to_dtype(mx, dt), kinds


def _random_shape(rng, rank):
  if rank == 1 and rng.random() < 0.2:
    return (int(rng.integers(1000, 5000)),)
  return tuple(int(d) for d in rng.integers(1, 6, size=rank))


def _check_v4(x, mn, mx, axis, attrs, what):
  ours = _ours_v4(x, mn, mx, axis=axis, **attrs)
  theirs = reference_qdq_v4(x, mn, mx, axis=axis, **attrs)
  assert_same_bits(ours, theirs, what, inputs={"x": x, "min": mn, "max": mx})


# ---- Per tensor ---------------------------------------------------------------


@pytest.mark.parametrize("num_bits", NUM_BITS)
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_v4_per_tensor_random(dt, num_bits):
  rng = rng_for("v4_per_tensor", dtype_name(dt), num_bits)
  for signed, narrow, range_given, round_mode in itertools.product(
      (True, False), (False, True), (False, True), ROUND_MODES):
    bits = _num_bits(num_bits, signed)
    qmin, qmax = qdq_bounds(signed, bits, narrow)
    shape = _random_shape(rng, int(rng.integers(0, 5)))
    x, mn, mx, kinds = _make_tensor(rng, dt, shape, -1, qmin, qmax,
                                    range_given)
    attrs = _attrs(signed, bits, narrow, range_given, round_mode)
    _check_v4(x, mn, mx, -1, attrs, f"{attrs} shape={shape} kind={kinds}")


@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_v4_per_tensor_large(dt):
  """Several reduction blocks and thread-pool shards."""
  rng = rng_for("v4_large", dtype_name(dt))
  for range_given, round_mode in itertools.product((False, True), ROUND_MODES):
    x, mn, mx, kinds = _make_tensor(rng, dt, (200003,), -1, -128, 127,
                                    range_given)
    attrs = _attrs(True, 8, False, range_given, round_mode)
    _check_v4(x, mn, mx, -1, attrs, f"{attrs} kind={kinds}")


# ---- Per channel ----------------------------------------------------------------

RANK_AXIS = [(r, a) for r in range(1, 6) for a in range(r)]


@pytest.mark.parametrize("rank,axis", RANK_AXIS,
                         ids=[f"rank{r}-axis{a}" for r, a in RANK_AXIS])
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_v4_per_channel_random(dt, rank, axis):
  rng = rng_for("v4_per_channel", dtype_name(dt), rank, axis)
  for range_given, round_mode in itertools.product((False, True), ROUND_MODES):
    for _ in range(2):
      signed, narrow = bool(rng.integers(2)), bool(rng.integers(2))
      bits = _num_bits(NUM_BITS[rng.integers(len(NUM_BITS))], signed)
      qmin, qmax = qdq_bounds(signed, bits, narrow)
      shape = tuple(int(d) for d in rng.integers(1, 5, size=rank))
      x, mn, mx, kinds = _make_tensor(rng, dt, shape, axis, qmin, qmax,
                                      range_given)
      attrs = _attrs(signed, bits, narrow, range_given, round_mode)
      _check_v4(x, mn, mx, axis, attrs,
                f"{attrs} shape={shape} axis={axis} kinds={kinds}")


@pytest.mark.parametrize("range_given", (False, True))
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_v4_per_channel_long_channels(dt, range_given):
  """Long contiguous channel runs (one task per channel) and many short ones."""
  rng = rng_for("v4_long_channels", dtype_name(dt), range_given)
  for shape, axis in (((3, 40000), 0), ((5000, 7), 1), ((4, 3, 2000), 1)):
    x, mn, mx, kinds = _make_tensor(rng, dt, shape, axis, -128, 127,
                                    range_given)
    attrs = _attrs(True, 8, False, range_given, "HALF_TO_EVEN")
    _check_v4(x, mn, mx, axis, attrs, f"shape={shape} axis={axis}")


@pytest.mark.parametrize("range_given", (False, True))
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_v2_wrapper(dt, range_given):
  """tf_qdq.quantize_and_dequantize_v2 (Python axis: None, >= 0, < 0)."""
  rng = rng_for("v2", dtype_name(dt), range_given)
  for rank in (0, 1, 2, 3, 4):
    axes = [None] + [a for a in range(-rank, rank)]
    for py_axis in axes:
      op_axis = -1 if py_axis is None else py_axis % rank
      signed, narrow = bool(rng.integers(2)), bool(rng.integers(2))
      bits = int(rng.integers(1, 17))
      round_mode = ROUND_MODES[rng.integers(2)]
      qmin, qmax = qdq_bounds(signed, bits, narrow)
      shape = tuple(int(d) for d in rng.integers(1, 5, size=rank))
      x, mn, mx, _ = _make_tensor(rng, dt, shape, op_axis, qmin, qmax,
                                  range_given)
      attrs = _attrs(signed, bits, narrow, range_given, round_mode)
      ours = tf_qdq.quantize_and_dequantize_v2(
          tf.constant(x), tf.constant(mn), tf.constant(mx), axis=py_axis,
          **attrs).numpy()
      what = f"{attrs} shape={shape} axis={py_axis}"
      if dt in (F32, F64) and (not range_given or py_axis is None):
        theirs = tf.quantization.quantize_and_dequantize_v2(
            tf.constant(x), tf.constant(mn), tf.constant(mx), axis=py_axis,
            **attrs).numpy()
        assert_same_bits(ours, theirs, what + " vs tf.quantization")
      assert_same_bits(ours, reference_qdq_v4(x, mn, mx, axis=op_axis,
                                              **attrs), what)


@pytest.mark.parametrize("dt", (F32, F64), ids=["float32", "float64"])
def test_per_channel_range_given_tf_rejects(dt):
  """The reason for the slice-by-slice reference: TF 2.21 rejects every
  per-channel input with range_given=True; tf_qdq computes it."""
  x = np.linspace(-2, 2, 12).astype(dt).reshape(3, 4)
  mn, mx = np.full(3, -1.0, dt), np.full(3, 1.0, dt)
  with pytest.raises(tf.errors.InvalidArgumentError):
    tf.raw_ops.QuantizeAndDequantizeV4(input=x, input_min=mn, input_max=mx,
                                       range_given=True, axis=0)
  _check_v4(x, mn, mx, 0, _attrs(True, 8, False, True, "HALF_TO_EVEN"), "")


# ---- Empty tensors ------------------------------------------------------------------

EMPTY_CASES = [((0,), -1), ((0,), 0), ((3, 0, 2), -1), ((3, 0, 2), 0),
               ((3, 0, 2), 1), ((3, 0, 2), 2), ((0, 4), 1), ((2, 0), 1)]


@pytest.mark.parametrize("shape,axis", EMPTY_CASES,
                         ids=[f"{s}-axis{a}" for s, a in EMPTY_CASES])
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_empty(dt, shape, axis):
  x = np.zeros(shape, dt)
  depth = () if axis == -1 else (shape[axis],)
  mn, mx = np.full(depth, -1.0, dt), np.full(depth, 1.0, dt)
  for range_given, round_mode in itertools.product((False, True), ROUND_MODES):
    attrs = _attrs(True, 8, False, range_given, round_mode)
    _check_v4(x, mn, mx, axis, attrs, f"{attrs}")
    g = np.ones(shape, dt)
    ours = tf_qdq.quantize_and_dequantize_v4_grad(g, x, mn, mx, axis=axis)
    for o, t in zip(ours, reference_qdq_v4_grad(g, x, mn, mx, axis=axis)):
      assert_same_bits(o, t, "grad")


# ---- Ties, special values, degenerate ranges ---------------------------------------

SCALE_ONE_X = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.49999997,
               126.5, -127.5, 0.0, -0.0, -0.3, 0.3, 127.0, -128.0, 127.5,
               -128.5, 1000.0, -1000.0, math.nan, -math.nan, math.inf,
               -math.inf]
# Spec 2.4 (first 10 inputs, float32/float64).
SCALE_ONE_EXPECTED = {
    "HALF_TO_EVEN": [0, 2, 2, -0.0, -2, -2, 0, -0.0, 126, -128],
    "HALF_UP": [1, 2, 3, 0, -1, -2, 1, 0, 127, -127],
}


@pytest.mark.parametrize("round_mode", ROUND_MODES)
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_ties_scale_one(dt, round_mode):
  """Signed 8-bit with the given range [-128, 127]: scale and inverse are 1."""
  x = _to_dtype(SCALE_ONE_X, dt)
  mn, mx = _to_dtype(-128.0, dt), _to_dtype(127.0, dt)
  attrs = _attrs(True, 8, False, True, round_mode)
  _check_v4(x, mn, mx, -1, attrs, round_mode)
  if dt == F32:  # the table is float32's (0.49999997f + 0.5f rounds to 1)
    ours = _ours_v4(x, mn, mx, **attrs)[:10]
    expected = np.asarray(SCALE_ONE_EXPECTED[round_mode], dt)
    assert_same_bits(ours, expected, "spec 2.4 table")


@pytest.mark.parametrize("range_given", (False, True))
@pytest.mark.parametrize("round_mode", ROUND_MODES)
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_ties_on_grid(dt, round_mode, range_given):
  """Every half-way point (k + 1/2) / scale with scale = 2**e, num_bits 1..16,
  signed and unsigned (vectorised: one op call per configuration)."""
  rng = rng_for("ties", dtype_name(dt), round_mode, range_given)
  for num_bits, signed in itertools.product(range(1, 17), (True, False)):
    narrow = bool(rng.integers(2))
    qmin, qmax = qdq_bounds(signed, num_bits, narrow)
    e = int(rng.integers(-6, 7))
    e = max(e, math.ceil(math.log2(max(abs(qmin), qmax, 1))) - _MAX_LOG2[dt])
    unit = 2.0 ** -e
    k = np.arange(qmin, qmax + 1, dtype=np.float64)
    if k.size > 4096:
      k = np.sort(rng.choice(k, 4096, replace=False))
    x = np.concatenate([[qmin * unit, qmax * unit], (k + 0.5) * unit,
                        (k - 0.5) * unit, k * unit, -k * unit])
    if not range_given:  # keep the data range at [qmin, qmax] * unit
      x = np.clip(x, qmin * unit, qmax * unit)
    x = _to_dtype(x, dt)
    mn, mx = _to_dtype(qmin * unit, dt), _to_dtype(qmax * unit, dt)
    attrs = _attrs(signed, num_bits, narrow, range_given, round_mode)
    _check_v4(x, mn, mx, -1, attrs, f"{attrs} unit=2**{-e}")


SPEC_EXAMPLES = [
    # (x, min, max, attrs, expected float32 values (approximate), from spec 2.4)
    ([0, 0.3, 1, 2, 3], 0.5, 2.0, _attrs(True, 8, False, True, "HALF_TO_EVEN"),
     [0, 0.2992126, 1.007874, 2, 2]),
    ([-1.005], -1.0, 1.0, _attrs(True, 8, False, True, "HALF_TO_EVEN"),
     [-1.007874]),
    ([-1, 0, 5, 10], 0.0, 0.0, _attrs(False, 8, False, False, "HALF_TO_EVEN"),
     [-1.0196, 0, 5.0196, 10]),
]


@pytest.mark.parametrize("example", range(len(SPEC_EXAMPLES)))
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_spec_examples(dt, example):
  x, mn, mx, attrs, expected = SPEC_EXAMPLES[example]
  x, mn, mx = _to_dtype(x, dt), _to_dtype(mn, dt), _to_dtype(mx, dt)
  _check_v4(x, mn, mx, -1, attrs, str(attrs))
  if dt in (F32, F64):
    np.testing.assert_allclose(_ours_v4(x, mn, mx, **attrs), expected,
                               rtol=1e-4)


DEGENERATE = [
    # (name, x, min, max, signed, num_bits, narrow, range_given)
    ("zero-range-given", [-1.0, -0.0, 0.0, 0.5, 3.0], 0.0, 0.0, True, 8, False, True),
    ("zero-data", [0.0, 0.0, 0.0], 0.0, 0.0, True, 8, False, False),
    ("negative-zero-data", [-0.0, -0.0, -0.0], 0.0, 0.0, True, 8, False, False),
    ("equal-range-given", [-1.0, 0.0, 0.7, 0.75, 2.0], 0.75, 0.75, True, 8, False, True),
    ("equal-negative-given", [-1.0, 0.0, -0.75, 2.0], -0.75, -0.75, False, 8, False, True),
    ("const-data", [0.75, 0.75, 0.75], 0.0, 0.0, True, 8, False, False),
    ("unsigned-all-negative", [-1.0, -2.5, -0.25, -0.0], 0.0, 0.0, False, 8, False, False),
    ("unsigned-negative-given", [-1.0, 0.5, -0.25], -2.0, -0.5, False, 4, False, True),
    ("1bit-signed-positive", [0.25, 1.0, 0.0, 3.0], 0.0, 0.0, True, 1, False, False),
    ("1bit-signed-narrow", [-1.0, 0.25, 1.0, -0.0], 0.0, 0.0, True, 1, True, False),
    ("1bit-signed-narrow-given", [-1.0, 0.25, 1.0], -1.0, 1.0, True, 1, True, True),
    ("1bit-unsigned", [-1.0, 0.25, 0.5, 1.0], 0.0, 0.0, False, 1, False, False),
    ("inf-in-data", [1.0, math.inf, -2.0, 0.0], 0.0, 0.0, True, 8, False, False),
    ("-inf-in-data", [1.0, -math.inf, -2.0], 0.0, 0.0, True, 8, False, False),
    ("inf-range-given", [1.0, 5.0, -2.0, math.inf], -math.inf, math.inf, True, 8, False, True),
    ("range-excludes-zero", [0.0, 0.3, 1.0, 2.0, 3.0], 0.5, 2.0, False, 8, False, True),
    # TF runs kernels with flush-to-zero / denormals-are-zero
    ("subnormal-range-given", [1e-45, -1e-40, 1e-39, 0.5, -0.0], -1e-39, 1e-39,
     True, 8, False, True),
    ("subnormal-data", [1e-45, -3e-39, 2e-39, 0.0], 0.0, 0.0, True, 8, False, False),
    ("subnormal-scale", [1e-36, -3e-37, 2e-37], 0.0, 0.0, True, 16, False, False),
    ("float64-subnormal", [5e-324, -1e-310, 2e-310, 1e-300], -1e-309, 1e-309, True, 8, False, True),
    ("edge-signed-61", [-3.0, 1e-9, 2.5, 1e30], -4.0, 4.0, True, 61, True, True),
    ("edge-unsigned-62", [3.0, 1e-9, 2.5, 7.0], 0.0, 0.0, False, 62, False, False),
]


@pytest.mark.parametrize("round_mode", ROUND_MODES)
@pytest.mark.parametrize("case", DEGENERATE, ids=[c[0] for c in DEGENERATE])
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_degenerate(dt, case, round_mode):
  _, x, mn, mx, signed, num_bits, narrow, range_given = case
  x, mn, mx = _to_dtype(x, dt), _to_dtype(mn, dt), _to_dtype(mx, dt)
  attrs = _attrs(signed, num_bits, narrow, range_given, round_mode)
  _check_v4(x, mn, mx, -1, attrs, case[0])
  # The same values as a channel of a per-channel op, beside a normal channel.
  x2 = np.stack([x, _to_dtype(np.linspace(-1, 1, x.size), dt)], axis=1)
  mn2 = np.stack([mn, _to_dtype(-1.0, dt)])
  mx2 = np.stack([mx, _to_dtype(1.0, dt)])
  _check_v4(x2, mn2, mx2, 1, attrs, case[0] + " per channel")


# docs/semantics.md D13: the data's max is a zero of both signs, and
# both sides of the range are degenerate (all-zero data, or unsigned with
# max(x) == 0). Then scale = T_MAX, inverse = max / qmax = ±0, and the sign of
# the max decides the sign of every output zero. TF's Eigen reduction picks -0
# or +0 by position (in its scalar path the later element wins the tie:
# [0., -0.] -> -0.0); tf_qdq's max is +0 whenever a +0 is present, else -0,
# whatever the order (and so on any thread count or device).
# Reference: TF on the same values reordered so that its scalar path meets the
# zero of tf_qdq's rule last, with the outputs put back in place (each output
# depends only on its own input and the tensor's scale).
SIGNED_ZERO_TIES = [
    ("zeros", [0.0, -0.0], True),
    ("zeros-rev", [-0.0, 0.0], True),
    ("zeros-3", [0.0, 0.0, -0.0], False),
    ("neg-zeros", [-0.0, -0.0], False),
    ("unsigned-non-positive", [-1.0, 0.0, -0.0], False),
]


@pytest.mark.parametrize("round_mode", ROUND_MODES)
@pytest.mark.parametrize("case", SIGNED_ZERO_TIES,
                         ids=[f"{c[0]}-{i}" for i, c in
                              enumerate(SIGNED_ZERO_TIES)])
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_data_range_signed_zero_max_rule(dt, case, round_mode):
  _, values, signed = case
  x = _to_dtype(values, dt)
  xf = x.astype(np.float64)
  positive_zero = (xf == 0) & ~np.signbit(xf)
  wanted = np.flatnonzero(positive_zero if positive_zero.any() else xf == 0)[0]
  order = [i for i in range(len(values)) if i != wanted] + [wanted]
  attrs = _attrs(signed, 8, False, False, round_mode)
  zero = np.asarray(0, dt)
  ours = tf_qdq.quantize_and_dequantize_v4(x, zero, zero, **attrs)
  theirs_reordered = reference_qdq_v4(x[order], zero, zero, axis=-1, **attrs)
  theirs = np.empty_like(np.asarray(theirs_reordered))
  theirs[order] = np.asarray(theirs_reordered)
  assert_same_bits(ours, theirs, case[0])


# ---- Range from data with NaN in it ------------------------------------------------
#
# Finding (TF 2.21 CPU): TF's Eigen min/max reduction is position dependent
# with NaN. A NaN in a vectorised packet is skipped, a NaN in the scalar tail
# propagates, and then every output is NaN: e.g. float32 n=17 with x[16]=NaN, or
# n=2 with x[1]=NaN, gives all-NaN outputs, while x[0]=NaN gives the NaN-skipped
# result. tf_qdq always skips NaN, so the reference is TF's op on the data with
# each NaN replaced by a value inside [nanmin, nanmax] (the channel's nanmin).


def _nan_skipped_reference(x, axis, attrs):
  xf = x.astype(np.float64)
  nan = np.isnan(xf)
  if axis == -1:
    fill = np.nanmin(xf)
  else:
    fill = np.nanmin(np.moveaxis(xf, axis, -1).reshape(-1, x.shape[axis]),
                     axis=0)
    fill = fill.reshape([-1 if i == axis else 1 for i in range(x.ndim)])
  filled = _to_dtype(np.where(nan, fill, xf), x.dtype)
  depth = () if axis == -1 else (x.shape[axis],)
  zeros = np.zeros(depth, x.dtype)
  ref = reference_qdq_v4(filled, zeros, zeros, axis=axis, **attrs)
  nan_value = _to_dtype(math.nan, x.dtype)
  return np.where(nan, nan_value, ref).astype(x.dtype)


@pytest.mark.parametrize("n", (3, 17, 1000, 100003))
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_nan_in_data_is_skipped(dt, n):
  rng = rng_for("nan", dtype_name(dt), n)
  for trial, round_mode in itertools.product(range(3), ROUND_MODES):
    x = rng.normal(size=n) * 3
    count = 1 if n < 1000 else int(rng.integers(1, 20))
    where = rng.choice(n, size=count, replace=False)
    where[0] = (n - 1, 0, n // 2)[trial]  # tail, head, middle
    x[where] = np.nan
    x = _to_dtype(x, dt)
    signed = bool(rng.integers(2))
    attrs = _attrs(signed, 8, False, False, round_mode)
    ours = _ours_v4(x, np.asarray(0, dt), np.asarray(0, dt), **attrs)
    assert_same_bits(ours, _nan_skipped_reference(x, -1, attrs),
                     f"n={n} NaN at {sorted(where)[:5]} {attrs}")
    if n >= 1000:  # per channel as well
      x2 = x[: n - n % 4].reshape(-1, 4)
      zeros = np.zeros(4, dt)
      for axis in (0, 1):
        x3 = x2 if axis == 1 else np.ascontiguousarray(x2.T)
        ours = _ours_v4(x3, zeros, zeros, axis=axis, **attrs)
        assert_same_bits(ours, _nan_skipped_reference(x3, axis, attrs),
                         f"per channel axis={axis} {attrs}")


# ---- QuantizeAndDequantizeV4Grad ------------------------------------------------------

GRAD_LAYOUTS = [(r, -1) for r in range(0, 5)] + RANK_AXIS


@pytest.mark.parametrize("rank,axis", GRAD_LAYOUTS,
                         ids=[f"rank{r}-axis{a}" for r, a in GRAD_LAYOUTS])
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_v4_grad(dt, rank, axis):
  rng = rng_for("v4_grad", dtype_name(dt), rank, axis)
  for trial in range(3):
    shape = tuple(int(d) for d in rng.integers(1, 6, size=rank))
    depth = () if axis == -1 else (shape[axis],)
    lo = -np.abs(rng.normal(size=depth)) * 10.0 ** rng.uniform(-2, 2)
    hi = np.abs(rng.normal(size=depth)) * 10.0 ** rng.uniform(-2, 2)
    if trial == 1:
      lo, hi = hi, lo  # min > max: everything is masked out
    if trial == 2:  # degenerate or NaN bounds
      lo = np.where(rng.random(depth) < 0.5, 0.0, np.nan)
      hi = np.where(rng.random(depth) < 0.5, 0.0, 1.0)
    mn, mx = _to_dtype(lo, dt), _to_dtype(hi, dt)
    span = 2.0 * max(float(np.nan_to_num(np.max(np.abs(lo)), nan=0.0)), 1e-3)
    x = rng.uniform(-span, span, size=shape)
    g = rng.normal(size=shape)
    # Put some elements exactly on a bound of their own channel.
    channel = (np.zeros(shape, int) if axis == -1 else
               np.indices(shape)[axis])
    bound = np.where(rng.random(shape) < 0.5,
                     np.ravel(mn.astype(np.float64))[channel],
                     np.ravel(mx.astype(np.float64))[channel])
    r = rng.random(shape)
    x = np.where(r < 0.15, bound, x)
    specials = np.array([math.nan, math.inf, -math.inf, 0.0, -0.0])
    x = np.where((r >= 0.15) & (r < 0.25),
                 specials[rng.integers(5, size=shape)], x)
    g = np.where(rng.random(shape) < 0.1, specials[rng.integers(3, size=shape)],
                 g)
    x, g = _to_dtype(x, dt), _to_dtype(g, dt)
    ours = tf_qdq.quantize_and_dequantize_v4_grad(
        tf.constant(g), tf.constant(x), tf.constant(mn), tf.constant(mx),
        axis=axis)
    theirs = reference_qdq_v4_grad(g, x, mn, mx, axis=axis)
    for name, o, t in zip(("input_backprop", "min_backprop", "max_backprop"),
                          ours, theirs):
      assert_same_bits(o, t, f"{name} shape={shape} axis={axis} trial={trial}",
                       inputs={"x": x, "g": g})


@pytest.mark.parametrize("axis", (-1, 0))
@pytest.mark.parametrize("dt", (F32, F64, BF16),
                         ids=["float32", "float64", "bfloat16"])
def test_v4_grad_subnormal_gradient(dt, axis):
  tiny = {F32: 1e-45, F64: 5e-324, BF16: 1e-40}[dt]
  x = _to_dtype([0.5, -0.25, 0.0, 3.0, -3.0, 0.75], dt)
  g = _to_dtype([tiny, -tiny, tiny, tiny, -tiny, 1.0], dt)
  depth = () if axis == -1 else (6,)
  mn, mx = np.full(depth, -1.0, dt), np.full(depth, 1.0, dt)
  ours = tf_qdq.quantize_and_dequantize_v4_grad(g, x, mn, mx, axis=axis)
  theirs = reference_qdq_v4_grad(g, x, mn, mx, axis=axis)
  assert_same_bits(ours[0], theirs[0], "input_backprop", inputs={"g": g})


# ---- Graph mode ----------------------------------------------------------------------

GRAPH_CASES = [
    # (shape, axis, signed, num_bits, narrow, range_given, round_mode)
    ((5, 7), -1, True, 8, False, False, "HALF_TO_EVEN"),
    ((5, 7), -1, False, 4, False, True, "HALF_UP"),
    ((5, 7), 1, True, 3, True, False, "HALF_UP"),
    ((2, 3, 4), 1, True, 8, False, True, "HALF_TO_EVEN"),
    ((), -1, True, 16, True, True, "HALF_UP"),
]


@pytest.mark.parametrize("case", range(len(GRAPH_CASES)))
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_graph_mode(dt, case):
  shape, axis, signed, num_bits, narrow, range_given, round_mode = \
      GRAPH_CASES[case]
  rng = rng_for("graph", dtype_name(dt), case)
  qmin, qmax = qdq_bounds(signed, num_bits, narrow)
  x, mn, mx, _ = _make_tensor(rng, dt, shape, axis, qmin, qmax, range_given)
  g = _to_dtype(rng.normal(size=shape), dt)
  attrs = _attrs(signed, num_bits, narrow, range_given, round_mode)

  @tf.function
  def forward_and_grad(x, mn, mx, g):
    y = tf_qdq.quantize_and_dequantize_v4(x, mn, mx, axis=axis, **attrs)
    grads = tf_qdq.quantize_and_dequantize_v4_grad(g, x, mn, mx, axis=axis)
    return [y] + list(grads)

  graph = forward_and_grad(tf.constant(x), tf.constant(mn), tf.constant(mx),
                           tf.constant(g))
  eager = _ours_v4(x, mn, mx, axis=axis, **attrs)
  assert_same_bits(graph[0], eager, "graph vs eager")
  assert_same_bits(graph[0], reference_qdq_v4(x, mn, mx, axis=axis, **attrs),
                   "graph vs reference")
  for o, t in zip(graph[1:], reference_qdq_v4_grad(g, x, mn, mx, axis=axis)):
    assert_same_bits(o, t, "grad graph vs reference")
