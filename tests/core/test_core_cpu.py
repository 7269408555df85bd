"""tf_qdq.core (the framework-free kernels on NumPy) against the TF ops, bit
for bit, on the CPU: both run the same core, through different front ends."""
import numpy as np
import pytest
import tensorflow as tf

import tf_qdq
from tf_qdq import core

from cases import cases  # pylint: disable=import-error


def _bits(a):
  a = np.asarray(a)
  return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def _assert_same(ours, theirs, where):
  ours, theirs = np.asarray(ours), np.asarray(theirs)
  assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
  nan = np.isnan(theirs.astype(np.float64))
  np.testing.assert_array_equal(np.isnan(ours.astype(np.float64)), nan, err_msg=where)
  bad = np.nonzero(_bits(ours)[~nan] != _bits(theirs)[~nan])[0]
  assert bad.size == 0, f"{where}: {bad.size} elements differ, first at {bad[0]}"


def _tf_op(name, args, kwargs):
  fn = getattr(tf_qdq, name)
  return fn(*[tf.constant(a) for a in args], **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_core_matches_tf_ops(dtype):
  checked = 0
  for name, args, kwargs in cases(dtype):
    ours = getattr(core, name)(*args, **kwargs)
    theirs = _tf_op(name, args, kwargs)
    if isinstance(ours, tuple):
      for o, t in zip(ours, theirs):
        _assert_same(o, t.numpy(), f"{name}{kwargs}")
    else:
      _assert_same(ours, theirs.numpy(), f"{name}{kwargs}")
    checked += 1
  assert checked > 50


def test_core_rejects_bad_input():
  x = np.ones((4, 3), np.float32)
  with pytest.raises(TypeError, match="float16, float32 and float64"):
    core.fake_quant_with_min_max_args(x.astype(np.int64))
  with pytest.raises(ValueError, match="Shape must be at least rank 3 but is rank 2"):
    core.quantize_and_dequantize_v4(x, 0.0, 0.0, axis=2)
  with pytest.raises(ValueError, match="num_bits must be between 2 and 16"):
    core.fake_quant_with_min_max_vars(x, -1.0, 1.0, num_bits=1)
  with pytest.raises(ValueError, match="min has incorrect size, expected 3 was 2"):
    core.fake_quant_with_min_max_vars_per_channel(x, np.zeros(2, np.float32),
                                                  np.ones(3, np.float32))
  with pytest.raises(ValueError, match="inputs must be at least rank 1 for a per-channel op"):
    core.fake_quant_with_min_max_vars_per_channel(np.float32(1), np.zeros(1, np.float32),
                                                  np.ones(1, np.float32))
  with pytest.raises(ValueError, match="gradient and input must be the same size"):
    core.fake_quant_with_min_max_vars_gradient(x, x.T, -1.0, 1.0)
  with pytest.raises(ValueError, match="Invalid range"):
    core.quantize_and_dequantize_v4(x, 1.0, -1.0, range_given=True)
  with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
    core.fake_quant_with_min_max_args(x, device="tpu")


# ---- issue 13: core agrees with the ops where it used not to -----------------


@pytest.mark.parametrize("shape", [[1], [1, 1], [4, 1], [1, 3]])
def test_per_channel_gradient_range_backprops_have_the_range_shape(shape):
  rng = np.random.default_rng(13)
  x = rng.uniform(-2, 2, shape).astype(np.float32)
  g = rng.normal(size=shape).astype(np.float32)
  mn = np.full(shape[-1:], -1.0, np.float32)
  mx = np.full(shape[-1:], 1.0, np.float32)
  args = (g, x, mn, mx)
  ours = core.fake_quant_with_min_max_vars_per_channel_gradient(*args)
  theirs = _tf_op("fake_quant_with_min_max_vars_per_channel_gradient", args, {})
  for o, t in zip(ours, theirs):
    _assert_same(o, t.numpy(), f"shape {shape}")
  assert ours[1].shape == ours[2].shape == tuple(shape[-1:])


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("lo, hi", [(-1e-40, 1.0), (-1.0, 3e-42), (-2e-45, 0.5)])
def test_args_float32_denormal_attrs_are_flushed_as_in_the_op(dtype, lo, hi):
  x = np.array([-1.0, -1e-40, 0.0, 0.2, 0.5, 1.0], dtype)
  for name, args in (("fake_quant_with_min_max_args", (x,)),
                     ("fake_quant_with_min_max_args_gradient", (x, x))):
    ours = getattr(core, name)(*args, min=lo, max=hi)
    theirs = _tf_op(name, args, dict(min=lo, max=hi))
    _assert_same(ours, theirs.numpy(), f"{name} {dtype.__name__} [{lo}, {hi}]")


def test_denormal_args_range_that_flushes_to_empty_raises():
  with pytest.raises(ValueError, match="min has to be smaller than max"):
    core.fake_quant_with_min_max_args(np.zeros(3, np.float64), min=-1e-45,
                                      max=1e-45)


def test_none_means_the_default_as_in_the_op():
  x = np.array([-0.504, 0.504, 0.3], np.float32)
  none = dict(signed_input=None, num_bits=None, range_given=None,
              round_mode=None, narrow_range=None, axis=None)
  _assert_same(core.quantize_and_dequantize_v4(x, 0.0, 1.0, **none),
               _tf_op("quantize_and_dequantize_v4", (x, 0.0, 1.0), none).numpy(),
               "QDQ with None attrs")
  _assert_same(core.quantize_and_dequantize_v4(x, 0.0, 1.0, **none),
               core.quantize_and_dequantize_v4(x, 0.0, 1.0), "None vs defaults")
  _assert_same(core.fake_quant_with_min_max_args(x * 9, min=None, max=None,
                                                 num_bits=None,
                                                 narrow_range=None),
               core.fake_quant_with_min_max_args(x * 9), "Args with None attrs")
  _assert_same(core.fake_quant_with_min_max_vars(x, -1.0, 1.0, num_bits=None,
                                                 narrow_range=None),
               core.fake_quant_with_min_max_vars(x, -1.0, 1.0), "Vars, None")
