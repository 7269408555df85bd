"""tf_qdq.core's CUDA kernels against its CPU kernels, bit for bit, for every
op and dtype. Needs a CUDA build of tf_qdq.core (cc/python/CMakeLists.txt,
-DTF_QDQ_WITH_CUDA=ON) and a GPU; it does not need TensorFlow, so it runs on a
GPU machine that has only nvcc, pybind11 and NumPy."""
import subprocess

import numpy as np
import pytest

from tf_qdq import core

from cases import cases  # pylint: disable=import-error


def _gpu_present():
  try:
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
  except (OSError, subprocess.SubprocessError):
    return False
  return out.returncode == 0 and "GPU" in out.stdout


pytestmark = [
    pytest.mark.skipif(not core.with_cuda,
                       reason="no GPU test: tf_qdq.core was built without CUDA"),
    pytest.mark.skipif(not _gpu_present(), reason="no GPU test: no GPU on this machine"),
]


def _bits(a):
  a = np.asarray(a)
  return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_gpu_matches_cpu(dtype):
  checked = 0
  for name, args, kwargs in cases(dtype, seed=7):
    fn = getattr(core, name)
    cpu = fn(*args, **kwargs)
    gpu = fn(*args, device="cuda", **kwargs)
    cpu = cpu if isinstance(cpu, tuple) else (cpu,)
    gpu = gpu if isinstance(gpu, tuple) else (gpu,)
    for c, g in zip(cpu, gpu):
      np.testing.assert_array_equal(_bits(g), _bits(c), err_msg=f"{name} {kwargs}")
    checked += 1
  assert checked > 50


def test_gpu_sums_deterministic_and_large():
  rng = np.random.default_rng(3)
  x = rng.standard_normal((1 << 22) + 17).astype(np.float32)
  g = rng.standard_normal(x.shape).astype(np.float32)
  cpu = core.fake_quant_with_min_max_vars_gradient(g, x, -1.0, 1.0)
  runs = [core.fake_quant_with_min_max_vars_gradient(g, x, -1.0, 1.0, device="cuda")
          for _ in range(3)]
  for run in runs:
    for c, r in zip(cpu, run):
      np.testing.assert_array_equal(_bits(r), _bits(c))
  w = rng.standard_normal((4096, 1024)).astype(np.float32)
  lo, hi = -np.ones(1024, np.float32), np.ones(1024, np.float32)
  cpu = core.fake_quant_with_min_max_vars_per_channel_gradient(w, w, lo, hi)
  gpu = core.fake_quant_with_min_max_vars_per_channel_gradient(w, w, lo, hi, device="cuda")
  for c, r in zip(cpu, gpu):
    np.testing.assert_array_equal(_bits(r), _bits(c))


def test_gpu_many_channels():
  # More channels than the kernels keep in shared memory, and than grid.y.
  rng = np.random.default_rng(4)
  x = rng.standard_normal((3, 70000, 2)).astype(np.float32)
  for range_given in (False, True):
    lo = -np.abs(rng.standard_normal(70000)).astype(np.float32)
    hi = np.abs(rng.standard_normal(70000)).astype(np.float32)
    cpu = core.quantize_and_dequantize_v4(x, lo, hi, axis=1, range_given=range_given)
    gpu = core.quantize_and_dequantize_v4(x, lo, hi, axis=1, range_given=range_given,
                                          device="cuda")
    np.testing.assert_array_equal(_bits(gpu), _bits(cpu))
  w = rng.standard_normal((5, 3000)).astype(np.float32)
  lo = -np.abs(rng.standard_normal(3000)).astype(np.float32)
  hi = np.abs(rng.standard_normal(3000)).astype(np.float32)
  for fn in (core.fake_quant_with_min_max_vars_per_channel,):
    np.testing.assert_array_equal(_bits(fn(w, lo, hi, device="cuda")), _bits(fn(w, lo, hi)))
