"""Bit parity of tf_qdq's FakeQuantWithMinMax{Args,Vars,VarsPerChannel} and
their gradients with TF 2.21.

* float32: forward and backprops_wrt_input bit-exact with TF's CPU kernels; the
  NumPy reference (_parity_util.numpy_fake_quant*) is validated against TF on
  every float32 case, so it is proven where it serves as the float64 reference;
* half/bfloat16: bit-exact with tf.cast(TF's float32 op on the upcast inputs)
  (Args: the float attrs as they are);
* float64 (TF has no kernel): bit-exact with the NumPy float64 reference;
* the min/max backprop sums (double accumulation, see test_sums.py) are checked
  here only against the exact sum: within one ulp (float64: an error bound).
The NumPy reference emulates flush-to-zero/denormals-are-zero, which TF sets
for its CPU kernels (float32 ranges like [-2e-38, 3e-38] depend on it).
"""
import math

import numpy as np
import pytest
import tensorflow as tf

import tf_qdq
from _parity_util import ALL_DTYPES, BF16, F32, F64, FAKE_QUANT_KINDS
from _parity_util import SIXTEEN_BIT
from _parity_util import Nudged, assert_double_sum_close, assert_same_bits
from _parity_util import assert_within_one_ulp, cast, compute_dtype
from _parity_util import dtype_name, exact_sums, numpy_fake_quant
from _parity_util import numpy_fake_quant_gradient, ours_fake_quant
from _parity_util import ours_fake_quant_gradient, rng_for, tf_fake_quant
from _parity_util import tf_fake_quant_16bit, tf_fake_quant_gradient
from _parity_util import tf_fake_quant_gradient_16bit

DTYPE_IDS = [dtype_name(d) for d in ALL_DTYPES]
NUM_BITS = tuple(range(2, 17))

# Ranges every (kind, dtype, num_bits) test runs (spec 4.3, 4.4, 6, 10).
FIXED_RANGES = [
    (-6.0, 6.0),  # the Args default
    (-1.0, 1.0),  # zero point 127.4999924 at 8 bits -> 127
    (-0.1, 0.9),  # spec 4.4 example
    (12.0, 123.0),  # excludes 0 (positive): nudged to [0, 111]
    (-123.0, -12.0),  # excludes 0 (negative)
    (-0.5, 2.5),  # spec 10 (XLA example), 4 bits
    (0.0, 1.0),
    (-1.0, 0.0),
    (-3e-6, 5e-6),  # tiny: half subnormals
    (-1e-30, 2e-30),  # tiny: float32 normal, far below half
    (-2e-38, 3e-38),  # tiny: subnormal scale in float32
    (-1e38, 1e38),  # huge
    (-3e38, 3e38),  # max - min overflows float32
    (-65504.0, 65504.0),
]


def _to_dtype(values, dt):
  with np.errstate(over="ignore"):
    values = np.asarray(values, np.float64)
    if dt in SIXTEEN_BIT:
      return values.astype(np.float32).astype(dt)
    return values.astype(dt)


def _random_range(rng):
  a = abs(rng.normal()) + 0.01
  b = abs(rng.normal()) + 0.01
  mag = 10.0 ** rng.uniform(-4, 4)
  shape = rng.integers(5)
  if shape == 0:  # positive, excludes 0
    return a * mag, (a + b) * mag
  if shape == 1:  # negative, excludes 0
    return -(a + b) * mag, -a * mag
  return -a * mag, b * mag


def _range_in_dtype(kind, lo, hi, dt):
  """min/max as the op gets them: float attrs (Args) or tensors of dt."""
  if kind == "args":
    return float(np.float32(lo)), float(np.float32(hi))
  return _to_dtype(lo, dt), _to_dtype(hi, dt)


def _effective_range(kind, mn, mx, dt):
  """The range in the compute dtype (what the kernel nudges)."""
  cdt = compute_dtype(dt)
  if kind == "args":
    return np.asarray(np.float32(mn), cdt), np.asarray(np.float32(mx), cdt)
  return np.asarray(mn).astype(cdt), np.asarray(mx).astype(cdt)


_CATEGORY_P = np.array([0.30, 0.15, 0.15, 0.04, 0.04, 0.03, 0.03, 0.03, 0.03,
                        0.04, 0.04, 0.08, 0.04])


def _fake_quant_data(rng, kind, dt, shape, mn, mx, num_bits, narrow):
  """Values of dtype dt around the (per-channel: last axis) range: uniform,
  on the nudged grid, at grid midpoints, at and next to the nudged bounds, at
  the raw bounds, far outside, and ±0, ±inf, NaN. Vectorised."""
  cdt = compute_dtype(dt)
  lo, hi = _effective_range(kind, mn, mx, dt)
  n = Nudged(lo, hi, num_bits, narrow, cdt)
  qrange = (1 << num_bits) - 1 - (1 if narrow else 0)
  with np.errstate(all="ignore"):
    lo64, hi64 = lo.astype(np.float64), hi.astype(np.float64)
    width = np.where(hi64 > lo64, hi64 - lo64, np.maximum(np.abs(lo64), 1.0))
    width = np.where(np.isfinite(width), width, 1e30)
    nmin = n.nudged_min.astype(np.float64)
    nmax = n.nudged_max.astype(np.float64)
    scale = n.scale.astype(np.float64)
    k = rng.integers(0, qrange + 1, size=shape)
    specials = np.array([0.0, -0.0, math.inf, -math.inf, math.nan])
    up, down = np.asarray(np.inf, cdt), np.asarray(-np.inf, cdt)
    categories = [
        lo64 - width / 4 + rng.random(shape) * width * 1.5,
        nmin + k * scale,
        nmin + (k + 0.5) * scale,
        np.broadcast_to(nmin, shape),
        np.broadcast_to(nmax, shape),
        np.broadcast_to(np.nextafter(n.nudged_min, down).astype(np.float64), shape),
        np.broadcast_to(np.nextafter(n.nudged_max, up).astype(np.float64), shape),
        np.broadcast_to(np.nextafter(n.nudged_min, up).astype(np.float64), shape),
        np.broadcast_to(np.nextafter(n.nudged_max, down).astype(np.float64), shape),
        np.broadcast_to(lo64, shape),
        np.broadcast_to(hi64, shape),
        specials[rng.integers(len(specials), size=shape)],
        (rng.choice([-1.0, 1.0], size=shape) * rng.uniform(2, 10, size=shape)
         * width + (lo64 + hi64) / 2),
    ]
    pick = rng.choice(len(categories), size=shape, p=_CATEGORY_P)
    x = np.choose(pick, [np.broadcast_to(c, shape) for c in categories])
  return _to_dtype(x, dt)


def _check(kind, dt, x, mn, mx, g, num_bits, narrow, what):
  """Forward and gradient of one configuration against the parity rule."""
  args = (num_bits, narrow)
  ours_fwd = ours_fake_quant(kind, x, mn, mx, *args)
  ours_grad = ours_fake_quant_gradient(kind, g, x, mn, mx, *args)
  inputs = {"x": x}
  if dt == F32:
    theirs_fwd = tf_fake_quant(kind, x, mn, mx, *args)
    theirs_grad = tf_fake_quant_gradient(kind, g, x, mn, mx, *args)
    # The NumPy reference, proven on float32 against TF.
    ref_grad = numpy_fake_quant_gradient(kind, g, x, mn, mx, *args)
    assert_same_bits(numpy_fake_quant(kind, x, mn, mx, *args), theirs_fwd,
                     f"NumPy reference vs TF, forward, {what}", inputs)
    assert_same_bits(ref_grad[0], theirs_grad[0],
                     f"NumPy reference vs TF, gradient, {what}", inputs)
  elif dt == F64:
    theirs_fwd = numpy_fake_quant(kind, x, mn, mx, *args)
    ref_grad = numpy_fake_quant_gradient(kind, g, x, mn, mx, *args)
    theirs_grad = [ref_grad[0]]
  else:
    theirs_fwd = tf_fake_quant_16bit(kind, x, mn, mx, *args)
    theirs_grad = tf_fake_quant_gradient_16bit(kind, g, x, mn, mx, *args)
    up = lambda a: cast(np.asarray(a, dt), F32)
    rmn, rmx = (mn, mx) if kind == "args" else (up(mn), up(mx))
    ref_grad = numpy_fake_quant_gradient(kind, up(g), up(x), rmn, rmx, *args)
  assert_same_bits(ours_fwd, theirs_fwd, f"forward, {what}", inputs)
  assert_same_bits(ours_grad[0], theirs_grad[0],
                   f"backprops_wrt_input, {what}", inputs)
  if kind == "args":
    assert len(ours_grad) == 1
    return
  per_channel = kind == "per_channel"
  for i, name in ((1, "backprop_wrt_min"), (2, "backprop_wrt_max")):
    assert ours_grad[i].dtype == dt
    assert ours_grad[i].shape == np.shape(mn), f"{name} shape, {what}"
    terms = ref_grad[i]
    if dt == F64:
      assert_double_sum_close(ours_grad[i], terms, per_channel,
                              f"{name}, {what}")
    else:
      assert_within_one_ulp(ours_grad[i], exact_sums(terms, per_channel), dt,
                            f"{name}, {what}")


def _shape_for(rng, kind, depth=None):
  if kind == "per_channel":
    rank = int(rng.integers(1, 6))
    lead = tuple(int(d) for d in rng.integers(1, 5, size=rank - 1))
    return lead + (depth if depth is not None else int(rng.integers(1, 5)),)
  rank = int(rng.integers(0, 4))
  if rank == 1 and rng.random() < 0.3:
    return (int(rng.integers(100, 3000)),)
  return tuple(int(d) for d in rng.integers(1, 7, size=rank))


def _ranges_for(rng, kind, dt, lo, hi, shape):
  """(min, max) for the op: channel 0 gets (lo, hi), the others are drawn
  from the fixed ranges and random ones."""
  if kind != "per_channel":
    return _range_in_dtype(kind, lo, hi, dt)
  depth = shape[-1]
  los, his = [lo], [hi]
  for _ in range(depth - 1):
    if rng.random() < 0.5:
      a, b = FIXED_RANGES[rng.integers(len(FIXED_RANGES))]
    else:
      a, b = _random_range(rng)
    los.append(a)
    his.append(b)
  return _to_dtype(los, dt), _to_dtype(his, dt)


@pytest.mark.parametrize("num_bits", NUM_BITS)
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", FAKE_QUANT_KINDS)
def test_fake_quant_grid(kind, dt, num_bits):
  rng = rng_for("fake_quant", kind, dtype_name(dt), num_bits)
  ranges = FIXED_RANGES + [_random_range(rng) for _ in range(3)]
  for lo, hi in ranges:
    narrow = bool(rng.integers(2))
    shape = _shape_for(rng, kind)
    mn, mx = _ranges_for(rng, kind, dt, lo, hi, shape)
    x = _fake_quant_data(rng, kind, dt, shape, mn, mx, num_bits, narrow)
    g = _to_dtype(rng.normal(size=shape), dt)
    _check(kind, dt, x, mn, mx, g, num_bits, narrow,
           f"range=({lo}, {hi}) num_bits={num_bits} narrow={narrow} "
           f"shape={shape}")


@pytest.mark.parametrize("narrow", (False, True))
@pytest.mark.parametrize("rank", (1, 2, 3, 4, 5))
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
def test_per_channel_ranks(dt, rank, narrow):
  rng = rng_for("per_channel_ranks", dtype_name(dt), rank, narrow)
  for num_bits in (2, 5, 8, 16):
    shape = tuple(int(d) for d in rng.integers(1, 5, size=rank - 1)) + (
        int(rng.integers(1, 7)),)
    lo, hi = _random_range(rng)
    mn, mx = _ranges_for(rng, "per_channel", dt, lo, hi, shape)
    x = _fake_quant_data(rng, "per_channel", dt, shape, mn, mx, num_bits,
                         narrow)
    g = _to_dtype(rng.normal(size=shape), dt)
    _check("per_channel", dt, x, mn, mx, g, num_bits, narrow,
           f"num_bits={num_bits} shape={shape}")


@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", FAKE_QUANT_KINDS)
def test_large(kind, dt):
  """Enough elements for several thread-pool shards and sum chunks."""
  rng = rng_for("large", kind, dtype_name(dt))
  shape = (50000, 3) if kind == "per_channel" else (150001,)
  lo, hi = -0.7, 1.3
  mn, mx = _ranges_for(rng, kind, dt, lo, hi, shape)
  x = _fake_quant_data(rng, kind, dt, shape, mn, mx, 8, False)
  g = _to_dtype(rng.normal(size=shape), dt)
  _check(kind, dt, x, mn, mx, g, 8, False, f"shape={shape}")


# ---- Degenerate and non-finite ranges (Vars, PerChannel) ------------------------

DEGENERATE_RANGES = [
    (0.0, 0.0),  # outputs +0, gradient passes through, sums 0
    (-0.0, 0.0),  # -0 counts as 0
    (-0.0, -0.0),
    (0.75, 0.75),  # scale 0: NaN
    (-2.0, -2.0),
    (1.0, -1.0),  # min > max: garbage, but TF's garbage
    (3.0, 2.0),
    (math.nan, 1.0),
    (-1.0, math.nan),
    (-math.inf, 1.0),
    (-1.0, math.inf),
    (-math.inf, math.inf),
]


@pytest.mark.parametrize("num_bits", (2, 8, 16))
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", ("vars", "per_channel"))
def test_degenerate_ranges(kind, dt, num_bits):
  rng = rng_for("degenerate", kind, dtype_name(dt), num_bits)
  for lo, hi in DEGENERATE_RANGES:
    narrow = bool(rng.integers(2))
    x = _to_dtype([-2.0, -1.0, -0.5, -0.0, 0.0, 0.3, 0.75, 1.0, 2.0, 5.0,
                   math.inf, -math.inf, math.nan, 1e-3, -1e-3, 123.0], dt)
    if kind == "per_channel":  # beside a normal channel
      x = np.stack([x, x[::-1]], axis=1)
      mn, mx = _to_dtype([lo, -1.0], dt), _to_dtype([hi, 1.0], dt)
    else:
      mn, mx = _to_dtype(lo, dt), _to_dtype(hi, dt)
    g = _to_dtype(rng.normal(size=x.shape), dt)
    _check(kind, dt, x, mn, mx, g, num_bits, narrow,
           f"range=({lo}, {hi}) narrow={narrow}")


@pytest.mark.parametrize("kind", ("vars", "per_channel"))
def test_float64_subnormal_ranges(kind):
  """float64 ranges whose scale is subnormal in double (flushed to zero, as in
  every TF CPU kernel), and subnormal inputs."""
  rng = rng_for("f64_subnormal", kind)
  for lo, hi in ((-1e-300, 2e-300), (-3e-308, 5e-308), (0.0, 1e-305),
                 (-1e-307, 0.0)):
    for num_bits in (2, 8, 16):
      x = np.array([5e-324, -5e-324, 1e-310, -1e-310, 0.0, -0.0, lo, hi,
                    1e-300, -1e-300, 3e-308, 1.0, -1.0])
      if kind == "per_channel":
        x = x.reshape(-1, 1)
        mn, mx = np.array([lo]), np.array([hi])
      else:
        mn, mx = np.float64(lo), np.float64(hi)
      g = rng.normal(size=x.shape)  # subnormal gradients: see below
      _check(kind, F64, x, mn, mx, g, num_bits, bool(rng.integers(2)),
             f"range=({lo}, {hi}) num_bits={num_bits}")




@pytest.mark.parametrize("dt", (F32, F64, BF16),
                         ids=["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("kind", FAKE_QUANT_KINDS)
def test_subnormal_gradient(kind, dt):
  tiny = {F32: 1e-45, F64: 5e-324, BF16: 1e-40}[dt]
  x = _to_dtype([0.5, -0.25, 0.0, 3.0, -3.0, 0.75], dt)
  g = _to_dtype([tiny, -tiny, tiny, tiny, -tiny, 1.0], dt)
  mn, mx = _range_in_dtype(kind, -1.0, 1.0, dt)
  if kind == "per_channel":
    x, g = x.reshape(-1, 1), g.reshape(-1, 1)
    mn, mx = np.reshape(mn, [1]), np.reshape(mx, [1])
  _check(kind, dt, x, mn, mx, g, 8, False, "subnormal gradients")


# ---- Spec examples -------------------------------------------------------------------


@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", FAKE_QUANT_KINDS)
def test_spec_examples(kind, dt):
  examples = [
      # (x, min, max, num_bits, expected outputs of float32 Vars, from spec
      # 4.4, 6 and 10; Args and PerChannel multiply and differ at the ties
      # 0.5 and 0.9 of the first example)
      ([-0.2, -0.1, 0.0, 0.05, 0.1, 0.5, 0.9, 1.0], -0.1, 0.9, 8,
       [-0.09803922, -0.09803922, 0.0, 0.0509804, 0.10196079, 0.49803925,
        0.8980393, 0.90196085]),
      ([123.0, 0.0], 12.0, 123.0, 8, [111.0, 0.0]),
      ([2.579, -0.6, 2.6], -0.5, 2.5, 4, [2.4, -0.6, 2.4]),
      ([-2.0, -1.0, 0.0, 1.0, 2.0], -1.0, 1.0, 8,
       [-0.99607843, -0.99607843, 0.0, 1.0039216, 1.0039216]),
  ]
  rng = rng_for("spec", kind, dtype_name(dt))
  for x, lo, hi, num_bits, expected in examples:
    x = _to_dtype(x, dt)
    shape = x.shape
    if kind == "per_channel":
      x = x.reshape(-1, 1)
    mn, mx = _range_in_dtype(kind, lo, hi, dt)
    if kind == "per_channel":
      mn, mx = np.reshape(mn, [1]), np.reshape(mx, [1])
    g = _to_dtype(rng.normal(size=x.shape), dt)
    _check(kind, dt, x, mn, mx, g, num_bits, False, f"example ({lo}, {hi})")
    if dt == F32 and kind == "vars":
      out = ours_fake_quant(kind, x, mn, mx, num_bits, False).reshape(shape)
      np.testing.assert_allclose(out, expected, rtol=2e-7, atol=1e-7)


def test_spec_nudge_values():
  """Spec 4.3: [-1, 1] at 8 bits gives zp 127 (127.4999924 rounds down), and
  x = -0.1 with [-0.1, 0.9] lies below nudged_min and feeds d_min (5.3)."""
  n = Nudged(np.float32(-1), np.float32(1), 8, False, F32)
  assert float(n.zero_point) == 127.0
  np.testing.assert_allclose([n.nudged_min, n.nudged_max],
                             [-0.99607843, 1.0039216], rtol=2e-7)
  n = Nudged(np.float32(-0.1), np.float32(0.9), 8, False, F32)
  np.testing.assert_allclose(n.nudged_min, -0.098039225, rtol=2e-7)
  x = np.array([-0.1, 0.5], np.float32)
  g = np.array([3.0, 5.0], np.float32)
  for fn in (tf.quantization.fake_quant_with_min_max_vars_gradient,
             tf_qdq.fake_quant_with_min_max_vars_gradient):
    wrt_x, wrt_min, wrt_max = fn(g, x, np.float32(-0.1), np.float32(0.9))
    assert_same_bits(wrt_x, np.array([0.0, 5.0], np.float32))
    assert float(wrt_min) == 3.0 and float(wrt_max) == 0.0


# ---- Empty tensors ---------------------------------------------------------------------

EMPTY_SHAPES = [(0,), (3, 0, 2), (2, 0), (0, 3)]


@pytest.mark.parametrize("shape", EMPTY_SHAPES, ids=str)
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", FAKE_QUANT_KINDS)
def test_empty(kind, dt, shape):
  x = np.zeros(shape, dt)
  g = np.ones(shape, dt)
  depth = (shape[-1],) if kind == "per_channel" else ()
  mn, mx = _range_in_dtype(kind, -1.0, 1.0, dt)
  if kind == "per_channel":
    mn, mx = np.full(depth, mn, dt), np.full(depth, mx, dt)
  _check(kind, dt, x, mn, mx, g, 8, False, f"shape={shape}")
  if kind != "args":
    for s in ours_fake_quant_gradient(kind, g, x, mn, mx, 8, False)[1:]:
      assert_same_bits(s, np.zeros(depth, dt), "sum over nothing")


# ---- Graph mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("dt", ALL_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", FAKE_QUANT_KINDS)
def test_graph_mode(kind, dt):
  rng = rng_for("graph", kind, dtype_name(dt))
  shape = (6, 3) if kind == "per_channel" else (4, 5)
  mn, mx = _ranges_for(rng, kind, dt, -0.1, 0.9, shape)
  x = _fake_quant_data(rng, kind, dt, shape, mn, mx, 5, True)
  g = _to_dtype(rng.normal(size=shape), dt)
  attrs = dict(num_bits=5, narrow_range=True)
  if kind == "args":
    @tf.function
    def graph(x, g):
      return ([tf_qdq.fake_quant_with_min_max_args(x, mn, mx, **attrs)] +
              [tf_qdq.fake_quant_with_min_max_args_gradient(g, x, mn, mx,
                                                            **attrs)])
    outs = graph(tf.constant(x), tf.constant(g))
  else:
    fwd = (tf_qdq.fake_quant_with_min_max_vars if kind == "vars" else
           tf_qdq.fake_quant_with_min_max_vars_per_channel)
    grad = (tf_qdq.fake_quant_with_min_max_vars_gradient if kind == "vars"
            else tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient)

    @tf.function
    def graph(x, g, mn, mx):
      return [fwd(x, mn, mx, **attrs)] + list(grad(g, x, mn, mx, **attrs))
    outs = graph(tf.constant(x), tf.constant(g), tf.constant(mn),
                 tf.constant(mx))
  eager = ([ours_fake_quant(kind, x, mn, mx, 5, True)] +
           ours_fake_quant_gradient(kind, g, x, mn, mx, 5, True))
  assert len(outs) == len(eager)
  for i, (o, e) in enumerate(zip(outs, eager)):
    assert_same_bits(o, e, f"graph vs eager, output {i}")
  _check(kind, dt, x, mn, mx, g, 5, True, "graph case")


@pytest.mark.parametrize("n", [1, 7, 8, 9, 17, 1031])
def test_half_nan_payloads_do_not_depend_on_position(n):
  """A half NaN keeps its sign and payload (quieted) through the op, as TF's
  float op between two casts keeps it, wherever it sits in its block: the
  F16C vector body and the scalar tail of a block convert alike."""
  rng = np.random.default_rng(n)
  payloads = np.array([0x7d01, 0xfe55, 0x7c01, 0x7fff, 0xfc01, 0x7e00], np.uint16)
  bits = rng.choice(payloads, size=n).astype(np.uint16)
  x = tf.constant(bits.view(np.float16))
  mn, mx = tf.constant(-1.0, tf.float16), tf.constant(1.0, tf.float16)
  ours = tf_qdq.fake_quant_with_min_max_vars(x, mn, mx).numpy().view(np.uint16)
  theirs = tf.cast(tf.quantization.fake_quant_with_min_max_vars(
      tf.cast(x, tf.float32), -1.0, 1.0), tf.float16).numpy().view(np.uint16)
  np.testing.assert_array_equal(ours, theirs)
  np.testing.assert_array_equal(ours, bits | 0x200)  # quieted, payload kept
