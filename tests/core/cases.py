"""Shared cases for the tf_qdq.core tests: every op, several shapes, axes,
settings and special values. Each case is (name, kwargs-builder)."""
import numpy as np

SPECIALS = np.array([0.0, -0.0, 0.5, 1.5, 2.5, -0.5, -1.5, np.nan, np.inf,
                     -np.inf, 0.49999997, -127.5, 126.5], np.float64)


def data(rng, shape, dtype, scale=3.0):
  x = rng.standard_normal(shape) * scale
  flat = x.reshape(-1)
  k = min(len(SPECIALS), flat.size)
  if k:
    flat[:k] = SPECIALS[:k]
  return x.astype(dtype)


def cases(dtype, seed=0):
  """Yields (op name, positional args, keyword args) covering every op."""
  rng = np.random.default_rng(seed)
  x = data(rng, (37, 16, 9), dtype)
  g = rng.standard_normal(x.shape).astype(dtype)
  big = data(rng, (70001,), dtype)
  gbig = rng.standard_normal(big.shape).astype(dtype)
  per_tensor = dict(signed_input=True, num_bits=8)
  for range_given in (False, True):
    for round_mode in ("HALF_TO_EVEN", "HALF_UP"):
      for signed, narrow, bits in ((True, False, 8), (True, True, 4), (False, False, 3)):
        kw = dict(signed_input=signed, narrow_range=narrow, num_bits=bits,
                  range_given=range_given, round_mode=round_mode)
        yield "quantize_and_dequantize_v4", (big, dtype(-2.0), dtype(1.5)), kw
        for axis in (0, 1, 2):
          depth = x.shape[axis]
          lo = (-rng.random(depth) - 0.1).astype(dtype)
          hi = (rng.random(depth) + 0.1).astype(dtype)
          yield "quantize_and_dequantize_v4", (x, lo, hi), dict(kw, axis=axis)
  del per_tensor
  yield "quantize_and_dequantize_v4_grad", (gbig, big, dtype(-1.0), dtype(1.0)), {}
  yield ("quantize_and_dequantize_v4_grad",
         (g, x, -np.ones(16, dtype), np.ones(16, dtype)), dict(axis=1))
  for bits, narrow in ((8, False), (4, True), (16, False), (2, False)):
    kw = dict(num_bits=bits, narrow_range=narrow)
    yield "fake_quant_with_min_max_args", (big,), dict(kw, min=-0.1, max=0.9)
    yield "fake_quant_with_min_max_args_gradient", (gbig, big), dict(kw, min=-1.0, max=1.0)
    yield "fake_quant_with_min_max_vars", (big, dtype(-1.0), dtype(1.0)), kw
    yield "fake_quant_with_min_max_vars", (big, dtype(0.0), dtype(0.0)), kw
    yield "fake_quant_with_min_max_vars_gradient", (gbig, big, dtype(-0.1), dtype(0.9)), kw
    lo = (-rng.random(9) * 2).astype(dtype)
    hi = (rng.random(9) * 2).astype(dtype)
    lo[0] = hi[0] = 0
    yield "fake_quant_with_min_max_vars_per_channel", (x, lo, hi), kw
    yield "fake_quant_with_min_max_vars_per_channel_gradient", (g, x, lo, hi), kw
