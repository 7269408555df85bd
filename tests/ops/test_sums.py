"""The min/max backprop sums of FakeQuantWithMinMaxVars(PerChannel)Gradient.

tf_qdq accumulates them in double in an order fixed by the shape (a documented
deviation: TF sums in float, in an order that depends on the intra-op thread
count), and rounds once to the output type. So:
(a) gradients that are multiples of 2**-20 in [-1, 1] sum exactly: the result
    is np.float32(math.fsum(terms)), bit for bit;
(b) general gradients: within one float32 ulp of the exact sum;
(c) the bits do not depend on the intra-op thread count (1, 2, 4);
(d) half/bfloat16: the exact sum correctly rounded once to the 16-bit type
    (not through float32);
(e) non-finite gradients poison the sums as in TF (the masks multiply);
(f) min == max == 0: the gradient passes through, both sums are +0.
The terms are those of the NumPy reference (_parity_util), which is validated
against TF in test_parity_fake_quant.py.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import tf_qdq
from _parity_util import BF16, F16, F32, F64, SIXTEEN_BIT
from _parity_util import assert_double_sum_close, assert_same_bits
from _parity_util import assert_within_one_ulp, cast, correctly_rounded
from _parity_util import dtype_name, exact_sums, isnan, numpy_fake_quant_gradient
from _parity_util import ours_fake_quant_gradient, rng_for, tf_fake_quant_gradient

KINDS = ("vars", "per_channel")
SIZES = (1, 7, 1000, 4097, 100003, 1000003)


def _shape(kind, n, rng):
  if kind == "vars":
    return (n,)
  depth = int(rng.integers(1, 6)) if n >= 5 else 1
  return (max(n // depth, 1), depth)


def _data(rng, kind, shape, dt, lo=-0.7, hi=1.3):
  """x spread over [-2, 3] so that about a quarter of the elements are below
  and a third above the range; min/max for the op."""
  x = rng.uniform(-2.0, 3.0, size=shape)
  if kind == "per_channel":
    depth = shape[-1]
    mn = lo + 0.2 * rng.uniform(-1, 1, size=depth)
    mx = hi + 0.2 * rng.uniform(-1, 1, size=depth)
  else:
    mn, mx = np.asarray(lo), np.asarray(hi)
  with np.errstate(over="ignore"):
    conv = (lambda a: np.asarray(a).astype(np.float32).astype(dt)) \
        if dt in SIXTEEN_BIT else (lambda a: np.asarray(a).astype(dt))
  return conv(x), conv(mn), conv(mx)


def _terms(kind, g, x, mn, mx, num_bits=8, narrow=False):
  """(terms_min, terms_max) as the kernel computes them (float for 16-bit)."""
  dt = np.asarray(x).dtype
  if dt in SIXTEEN_BIT:
    up = lambda a: cast(np.asarray(a, dt), F32)
    g, x, mn, mx = up(g), up(x), up(mn), up(mx)
  _, t_min, t_max = numpy_fake_quant_gradient(kind, g, x, mn, mx, num_bits,
                                               narrow)
  return t_min, t_max


def _dyadic(rng, shape, dt, bits_=20):
  """Random multiples of 2**-bits_ in [-1, 1], exactly representable in dt."""
  k = rng.integers(-(1 << bits_), (1 << bits_) + 1, size=shape)
  values = k * 2.0 ** -bits_
  if dt in SIXTEEN_BIT:
    # Round to dt: still a multiple of 2**-bits_ when representable (bf16:
    # fewer significant bits, the rounding keeps it dyadic and in [-1, 1]).
    values = values.astype(np.float32).astype(dt)
  return values.astype(dt)


# ---- (a) exact for dyadic gradients ------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dt", (F32, F64), ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_exact_for_dyadic_gradients(kind, dt, n):
  rng = rng_for("dyadic", kind, dtype_name(dt), n)
  shape = _shape(kind, n, rng)
  x, mn, mx = _data(rng, kind, shape, dt)
  g = _dyadic(rng, shape, dt)
  _, wrt_min, wrt_max = ours_fake_quant_gradient(kind, g, x, mn, mx, 8, False)
  for name, ours, terms in zip(("min", "max"), (wrt_min, wrt_max),
                               _terms(kind, g, x, mn, mx)):
    exact = exact_sums(terms, kind == "per_channel")
    expected = np.asarray(exact).astype(dt)
    assert_same_bits(ours, expected, f"backprop_wrt_{name} n={n}")


# ---- (b) within one ulp for general gradients ---------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dt", (F32, F64), ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_close_for_general_gradients(kind, dt, n):
  rng = rng_for("general", kind, dtype_name(dt), n)
  shape = _shape(kind, n, rng)
  x, mn, mx = _data(rng, kind, shape, dt)
  # Mixed magnitudes and signs: cancellation and a wide exponent range.
  g = (rng.normal(size=shape) * 10.0 ** rng.uniform(-4, 4, size=shape)
       ).astype(dt)
  _, wrt_min, wrt_max = ours_fake_quant_gradient(kind, g, x, mn, mx, 8, False)
  for name, ours, terms in zip(("min", "max"), (wrt_min, wrt_max),
                               _terms(kind, g, x, mn, mx)):
    if dt == F32:
      assert_within_one_ulp(ours, exact_sums(terms, kind == "per_channel"),
                            dt, f"backprop_wrt_{name} n={n}")
    else:
      assert_double_sum_close(ours, terms, kind == "per_channel",
                              f"backprop_wrt_{name} n={n}")


@pytest.mark.parametrize("kind", KINDS)
def test_close_to_tf_sums(kind):
  """TF's float sums are not exact, but both approximate the same value."""
  rng = rng_for("tf_sums", kind)
  shape = _shape(kind, 100003, rng)
  x, mn, mx = _data(rng, kind, shape, F32)
  g = rng.normal(size=shape).astype(np.float32)
  ours = ours_fake_quant_gradient(kind, g, x, mn, mx, 8, False)
  theirs = tf_fake_quant_gradient(kind, g, x, mn, mx, 8, False)
  assert_same_bits(ours[0], theirs[0], "backprops_wrt_input")
  for i in (1, 2):
    np.testing.assert_allclose(ours[i], theirs[i], rtol=1e-4, atol=1e-3)


# ---- (c) thread-count independence ---------------------------------------------------

_THREADS_SCRIPT = r"""
import json, sys, time, zlib
t0 = time.time()
import numpy as np
import tensorflow as tf
threads = int(sys.argv[1])
tf.config.threading.set_intra_op_parallelism_threads(threads)
import tf_qdq
t1 = time.time()
import os
results = {"tf_qdq": os.path.abspath(tf_qdq.__file__)}
rng = np.random.default_rng(20240521)
cases = [("vars", (400009,), np.float32), ("per_channel", (100003, 4), np.float32),
         ("per_channel", (1001, 333), np.float32), ("vars", (150001,), np.float64),
         ("per_channel", (50001, 3), np.float16), ("vars", (100003,), tf.bfloat16.as_numpy_dtype)]
for kind, shape, dt in cases:
  x = rng.uniform(-2.0, 3.0, size=shape).astype(np.float32).astype(dt)
  g = rng.normal(size=shape) * np.exp2(rng.integers(-10, 10, size=shape))
  g = g.astype(np.float32).astype(dt)
  depth = shape[-1]
  if kind == "vars":
    fn = tf_qdq.fake_quant_with_min_max_vars_gradient
    mn, mx = np.asarray(-0.7, dt), np.asarray(1.3, dt)
  else:
    fn = tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient
    mn = rng.uniform(-0.9, -0.5, size=depth).astype(np.float32).astype(dt)
    mx = rng.uniform(1.1, 1.5, size=depth).astype(np.float32).astype(dt)
  outs = [o.numpy() for o in fn(g, x, mn, mx, num_bits=8, narrow_range=False)]
  results[f"{kind}{shape}{np.dtype(dt).name}"] = [
      zlib.crc32(outs[0].tobytes()), outs[1].tobytes().hex(), outs[2].tobytes().hex()]
results["threads"] = tf.config.threading.get_intra_op_parallelism_threads()
print(f"import {t1 - t0:.1f}s, run {time.time() - t1:.1f}s", file=sys.stderr)
print("RESULT" + json.dumps(results))
"""


def test_thread_count_independence():
  # Run where tf_qdq's package directory is importable as it is here (the
  # source tree or site-packages), so every child loads the same library.
  package_parent = os.path.dirname(os.path.dirname(os.path.abspath(
      tf_qdq.__file__)))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  procs = {
      t: subprocess.Popen([sys.executable, "-c", _THREADS_SCRIPT, str(t)],
                          cwd=package_parent, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
      for t in (1, 2, 4)
  }
  results = {}
  for t, p in procs.items():
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, f"threads={t}: exit {p.returncode}\n{err[-3000:]}"
    line = [l for l in out.splitlines() if l.startswith("RESULT")][-1]
    results[t] = json.loads(line[len("RESULT"):])
    assert results[t].pop("threads") == t
    assert os.path.samefile(results[t].pop("tf_qdq"), tf_qdq.__file__)
  assert results[1].keys() == results[2].keys() == results[4].keys()
  for key in results[1]:
    assert results[1][key] == results[2][key] == results[4][key], (
        f"{key}: 1 thread {results[1][key][1:]}, 2 threads "
        f"{results[2][key][1:]}, 4 threads {results[4][key][1:]}")


# ---- (d) 16-bit: one correct rounding of the exact sum -----------------------------


@pytest.mark.parametrize("n", (1, 7, 1000, 100003))
@pytest.mark.parametrize("dt", SIXTEEN_BIT, ids=["half", "bfloat16"])
@pytest.mark.parametrize("kind", KINDS)
def test_16bit_sums_correctly_rounded(kind, dt, n):
  rng = rng_for("sixteen", kind, dtype_name(dt), n)
  shape = _shape(kind, n, rng)
  x, mn, mx = _data(rng, kind, shape, dt)
  # Half values in [-1, 1] are multiples of 2**-24 and bfloat16 ones built
  # from multiples of 2**-20: their sums are exact in double.
  g = _dyadic(rng, shape, dt, bits_=24 if dt == F16 else 20)
  _, wrt_min, wrt_max = ours_fake_quant_gradient(kind, g, x, mn, mx, 8, False)
  for name, ours, terms in zip(("min", "max"), (wrt_min, wrt_max),
                               _terms(kind, g, x, mn, mx)):
    exact = np.atleast_1d(exact_sums(terms, kind == "per_channel"))
    expected = np.array([correctly_rounded(e, dt) for e in exact], dt)
    assert_same_bits(np.atleast_1d(ours), expected, f"backprop_wrt_{name}")
    if dt == F16:  # NumPy's double -> half conversion rounds once, too
      assert_same_bits(expected, exact.astype(F16), "numpy cross-check")


# (gradients, where each goes: "below" / "above" the range, exact sum,
# correctly rounded result, the result of rounding through float32)
DOUBLE_ROUNDING = [
    # bfloat16: 1 + 2**-8 is a tie between 1 and 1 + 2**-7; the 2**-30 breaks
    # it upwards, but a float32 sum loses it and rounds the tie to even (1).
    (BF16, [1.0, 2.0 ** -8, 2.0 ** -30], 1.0 + 2.0 ** -7, 1.0),
    (BF16, [-1.0, -(2.0 ** -8), -(2.0 ** -30)], -(1.0 + 2.0 ** -7), -1.0),
    # half: 2049 is a tie between 2048 and 2050; 2**-20 breaks it upwards.
    (F16, [2048.0, 1.0, 2.0 ** -20], 2050.0, 2048.0),
    # half overflow: the exact sum rounds to inf.
    (F16, [60000.0, 6000.0], math.inf, math.inf),
    (F16, [65504.0, 15.0], 65504.0, 65504.0),
    (F16, [65504.0, 16.0], math.inf, math.inf),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", range(len(DOUBLE_ROUNDING)))
def test_16bit_sums_round_once(case, kind):
  dt, grads, expected, _ = DOUBLE_ROUNDING[case]
  k = len(grads)
  # Every gradient both below the range (min sum) and, mirrored, above it.
  x = np.array([-5.0] * k + [5.0] * k, np.float32).astype(dt)
  g = np.array(grads + grads, np.float32).astype(dt)
  assert (g.astype(np.float64) == np.array(grads + grads)).all()
  mn, mx = np.asarray(-1.0, dt), np.asarray(1.0, dt)
  if kind == "per_channel":
    x, g = x.reshape(-1, 1), g.reshape(-1, 1)
    mn, mx = mn.reshape(1), mx.reshape(1)
  _, wrt_min, wrt_max = ours_fake_quant_gradient(kind, g, x, mn, mx, 8, False)
  want = np.asarray(expected, np.float32).astype(dt)
  for name, ours in (("min", wrt_min), ("max", wrt_max)):
    assert_same_bits(np.ravel(ours), np.ravel(want), f"backprop_wrt_{name}")


# ---- (e) non-finite gradients -----------------------------------------------------------


@pytest.mark.parametrize("where", ("below", "between", "above"))
@pytest.mark.parametrize("value", (math.inf, -math.inf, math.nan),
                         ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("dt", (F32, F64, F16, BF16),
                         ids=["float32", "float64", "half", "bfloat16"])
@pytest.mark.parametrize("kind", KINDS)
def test_nonfinite_gradient(kind, dt, value, where):
  """A non-finite gradient poisons every output it is multiplied into: at a
  masked-out position, backprops_wrt_input is NaN; each sum it does not belong
  to is NaN (inf * 0), the one it belongs to is ±inf (or NaN)."""
  x64 = np.array([-5.0, -3.0, 0.25, 0.5, 4.0, 6.0])  # 2 below, 2 in, 2 above
  pos = {"below": 0, "between": 2, "above": 4}[where]
  g64 = np.array([0.5, -0.25, 1.0, 2.0, -1.5, 0.75])
  g64[pos] = value
  to = lambda a: np.asarray(a, np.float32).astype(dt)
  x, g = to(x64), to(g64)
  mn, mx = to(-1.0), to(1.0)
  if kind == "per_channel":
    x, g = x.reshape(-1, 1), g.reshape(-1, 1)
    mn, mx = mn.reshape(1), mx.reshape(1)
  ours = ours_fake_quant_gradient(kind, g, x, mn, mx, 8, False)
  # backprops_wrt_input: TF's semantics (masks multiply), bit for bit.
  wrt_input = np.ravel(ours[0])
  assert bool(isnan(wrt_input[pos])) == (where != "between" or math.isnan(value))
  t_min, t_max = _terms(kind, g, x, mn, mx)
  for i, (name, terms, own) in enumerate((("min", t_min, "below"),
                                          ("max", t_max, "above")), start=1):
    exact = exact_sums(terms, kind == "per_channel")
    got = float(np.ravel(ours[i])[0].astype(np.float64))
    if own == where and not math.isnan(value):
      assert got == value, f"backprop_wrt_{name}: {got!r}"
    else:
      assert math.isnan(got), f"backprop_wrt_{name}: {got!r} (expected NaN)"
    assert math.isnan(float(np.ravel(exact)[0])) == math.isnan(got)
  if dt in (F32,) or dt in SIXTEEN_BIT:  # the same classes as TF's float op
    up = lambda a: cast(np.asarray(a, dt), F32)
    theirs = tf_fake_quant_gradient(kind, up(g), up(x), up(mn), up(mx), 8,
                                    False)
    assert_same_bits(ours[0], cast(theirs[0], dt), "backprops_wrt_input")
    for i in (1, 2):
      o = float(np.ravel(ours[i])[0].astype(np.float64))
      t = float(np.ravel(theirs[i])[0])
      assert (math.isnan(o) and math.isnan(t)) or o == t, (i, o, t)


# ---- (f) min == max == 0 ------------------------------------------------------------------


@pytest.mark.parametrize("dt", (F32, F64, F16, BF16),
                         ids=["float32", "float64", "half", "bfloat16"])
@pytest.mark.parametrize("kind", KINDS)
def test_zero_range_passes_gradient(kind, dt):
  rng = rng_for("zero_range", kind, dtype_name(dt))
  shape = (1001, 3) if kind == "per_channel" else (3003,)
  x64 = rng.uniform(-2, 2, size=shape)
  x64.flat[:6] = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e-40]
  g64 = rng.normal(size=shape)
  g64.flat[:8] = [math.inf, -math.inf, math.nan, 0.0, -0.0, 1e-45, -1e-42,
                  3.0]
  to = lambda a: np.asarray(a, np.float64).astype(np.float32).astype(dt) \
      if dt in SIXTEEN_BIT else np.asarray(a, np.float64).astype(dt)
  x, g = to(x64), to(g64)
  if kind == "per_channel":  # channel 1 has a normal range
    mn, mx = to([0.0, -1.0, -0.0]), to([0.0, 1.0, 0.0])
  else:
    mn, mx = to(0.0), to(0.0)
  ours = ours_fake_quant_gradient(kind, g, x, mn, mx, 8, False)
  if kind == "vars":
    assert_same_bits(ours[0], g, "backprops_wrt_input == gradients")
    assert_same_bits(ours[1], to(0.0), "backprop_wrt_min")
    assert_same_bits(ours[2], to(0.0), "backprop_wrt_max")
  else:
    for c in (0, 2):
      assert_same_bits(ours[0][:, c], g[:, c], f"channel {c} wrt_input")
      assert_same_bits(ours[1][c], to(0.0), f"channel {c} wrt_min")
      assert_same_bits(ours[2][c], to(0.0), f"channel {c} wrt_max")
    t_min, t_max = _terms(kind, g, x, mn, mx)
    assert_within_one_ulp(ours[1][1], exact_sums(t_min, True)[1], dt)
    assert_within_one_ulp(ours[2][1], exact_sums(t_max, True)[1], dt)
  if dt == F32:  # and TF agrees
    theirs = tf_fake_quant_gradient(kind, g, x, mn, mx, 8, False)
    assert_same_bits(ours[0], theirs[0], "TF backprops_wrt_input")
    if kind == "vars":
      for i in (1, 2):
        assert_same_bits(ours[i], theirs[i], "TF sums")


# ---- Op determinism mode ---------------------------------------------------------
#
# TF's GPU FakeQuant gradients refuse to run under
# tf.config.experimental.enable_op_determinism(); ours run there (their sums
# have a fixed order) and give the same bits as without it. The mode is global
# to a process, hence the subprocess.

_DETERMINISM_SCRIPT = r"""
import hashlib
import sys
import numpy as np
import tensorflow as tf
import tf_qdq
if sys.argv[1] == "on":
  tf.config.experimental.enable_op_determinism()
rng = np.random.default_rng(11)
x = rng.standard_normal((4099, 33)).astype(np.float32)
g = rng.standard_normal(x.shape).astype(np.float32)
lo, hi = -np.ones(33, np.float32), np.ones(33, np.float32)
outs = list(tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(g, x, lo, hi))
outs += list(tf_qdq.fake_quant_with_min_max_vars_gradient(g, x, -1.0, 1.0))
outs += list(tf_qdq.quantize_and_dequantize_v4_grad(g, x, -1.0, 1.0))
outs.append(tf_qdq.quantize_and_dequantize_v4(x, 0.0, 0.0, axis=1))
print("@@" + ",".join(hashlib.sha256(np.asarray(o).tobytes()).hexdigest() for o in outs))
"""


def test_ops_run_under_op_determinism_with_the_same_bits():
  def run(mode):
    proc = subprocess.run([sys.executable, "-c", _DETERMINISM_SCRIPT, mode],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [l for l in proc.stdout.splitlines() if l.startswith("@@")][-1]
  assert run("on") == run("off")


def test_sums_are_not_correctly_rounded_under_cancellation():
  """docs/semantics.md D7: a double sum in a fixed order, not math.fsum. 1e30,
  1 and -1e30 at indices 0, 64 and 128 share a lane: 0.0 (as TF), where fsum
  gives 1.0."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  g = np.zeros(256, np.float32)
  g[[0, 64, 128]] = [1e30, 1.0, -1e30]
  x = np.full(256, 5.0, np.float32)  # above the range: every g goes to max
  _, _, dmax = tf_qdq.fake_quant_with_min_max_vars_gradient(g, x, -1.0, 1.0)
  assert math.fsum(g.astype(np.float64)) == 1.0
  assert dmax.numpy() == 0.0
  _, _, theirs = tf.quantization.fake_quant_with_min_max_vars_gradient(
      g, x, -1.0, 1.0)
  assert theirs.numpy() == 0.0
