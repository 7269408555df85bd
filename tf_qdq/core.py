"""tf_qdq.core: tf-qdq's kernels on NumPy arrays, without TensorFlow.

The same functions and argument names as the TF ops (raw-op conventions: for
QDQ `axis=-1` is per tensor; FakeQuant per-channel uses the last axis), for
float16, float32 and float64 arrays. They run the framework-free C++ core that
the TF op library is built on, so they give the same bits as the ops.

    import numpy as np
    from tf_qdq import core
    y = core.fake_quant_with_min_max_vars(np.float32([0.1, 2.0]), -1.0, 1.0)

`device="cuda"` runs the CUDA kernels when the module was built with CUDA
(`core.with_cuda`); see cc/python/CMakeLists.txt. Bad arguments raise
ValueError or TypeError.
"""
import numpy as np

try:
  from tf_qdq import _core
except ImportError as e:  # pragma: no cover - depends on the build
  raise ImportError(
      "tf_qdq.core: the extension module tf_qdq/_core*.so is missing. It is "
      "part of the tf-qdq wheel; from a source tree build it with "
      "`make build` or with CMake (cc/python/CMakeLists.txt).") from e

with_cuda = bool(_core.with_cuda)

_DTYPES = {np.dtype(np.float16): "float16", np.dtype(np.float32): "float32",
           np.dtype(np.float64): "float64"}

__all__ = [
    "quantize_and_dequantize_v4", "quantize_and_dequantize_v4_grad",
    "fake_quant_with_min_max_args", "fake_quant_with_min_max_args_gradient",
    "fake_quant_with_min_max_vars", "fake_quant_with_min_max_vars_gradient",
    "fake_quant_with_min_max_vars_per_channel",
    "fake_quant_with_min_max_vars_per_channel_gradient", "with_cuda",
]


def _dtype_of(first):
  dtype = np.asarray(first).dtype
  if dtype not in _DTYPES:
    raise TypeError("tf_qdq.core supports float16, float32 and float64 "
                    "arrays, "
                    f"got {dtype}")
  return dtype


def _prepare(value, dtype):
  """C-contiguous array of `dtype`; float16 travels as its uint16 bits."""
  a = np.require(np.asarray(value, dtype=dtype), requirements="C")  # keeps 0-d
  return a.view(np.uint16) if dtype == np.float16 else a


def _restore(result, dtype):
  if isinstance(result, tuple):
    return tuple(_restore(r, dtype) for r in result)
  return result.view(np.float16) if dtype == np.float16 else result


def _attr(value, default):
  """None is the op's default, as for the TF ops."""
  return default if value is None else value


def _int_attr(value, default):
  """As the TF ops read int attrs: None is the default, a str is rejected,
  anything else goes through int() (8.0 is 8)."""
  value = _attr(value, default)
  if isinstance(value, str):
    raise TypeError(f"expected an int, got {value!r}")
  return int(value)


def flushed_float32(value):
  """A float attr as the kernels read it: float32, denormals flushed to a
  zero of their sign (the kernels run with DAZ; a conversion to the compute
  type outside the kernels would keep them). Shared with the XLA lowering."""
  value = np.float32(value)
  if value != 0 and abs(value) < np.finfo(np.float32).tiny:
    return np.copysign(np.float32(0), value)
  return value


def _float32_attr(value, default):
  return float(flushed_float32(_attr(value, default)))


def _call(name, arrays, dtype, **attrs):
  fn = getattr(_core, f"{name}_{_DTYPES[dtype]}")
  return _restore(fn(*[_prepare(a, dtype) for a in arrays], **attrs), dtype)


def quantize_and_dequantize_v4(input, input_min, input_max, signed_input=True,  # pylint: disable=redefined-builtin
                               num_bits=8, range_given=False,
                               round_mode="HALF_TO_EVEN", narrow_range=False,
                               axis=-1, device="cpu"):
  dtype = _dtype_of(input)
  return _call("quantize_and_dequantize_v4", (input, input_min, input_max),
               dtype, signed_input=_attr(signed_input, True),
               num_bits=_int_attr(num_bits, 8),
               range_given=_attr(range_given, False),
               round_mode=_attr(round_mode, "HALF_TO_EVEN"),
               narrow_range=_attr(narrow_range, False),
               axis=_int_attr(axis, -1),
               device=device)


def quantize_and_dequantize_v4_grad(gradients, input, input_min, input_max,  # pylint: disable=redefined-builtin
                                    axis=-1, device="cpu"):
  dtype = _dtype_of(gradients)
  return _call("quantize_and_dequantize_v4_grad",
               (gradients, input, input_min, input_max), dtype,
               axis=_int_attr(axis, -1), device=device)


def fake_quant_with_min_max_args(inputs, min=-6.0, max=6.0, num_bits=8,  # pylint: disable=redefined-builtin
                                 narrow_range=False, device="cpu"):
  dtype = _dtype_of(inputs)
  return _call("fake_quant_with_min_max_args", (inputs,), dtype,
               **_args_attrs(min, max, num_bits, narrow_range), device=device)


def fake_quant_with_min_max_args_gradient(gradients, inputs, min=-6.0,  # pylint: disable=redefined-builtin
                                          max=6.0, num_bits=8,
                                          narrow_range=False, device="cpu"):
  dtype = _dtype_of(gradients)
  return _call("fake_quant_with_min_max_args_gradient", (gradients, inputs),
               dtype, **_args_attrs(min, max, num_bits, narrow_range),
               device=device)


def _args_attrs(min, max, num_bits, narrow_range):  # pylint: disable=redefined-builtin
  return dict(min=_float32_attr(min, -6.0), max=_float32_attr(max, 6.0),
              num_bits=_int_attr(num_bits, 8),
              narrow_range=_attr(narrow_range, False))


def _fake_quant_vars(name, arrays, num_bits, narrow_range, device):
  dtype = _dtype_of(arrays[0])
  return _call(name, arrays, dtype, num_bits=_int_attr(num_bits, 8),
               narrow_range=_attr(narrow_range, False), device=device)


def fake_quant_with_min_max_vars(inputs, min, max, num_bits=8,  # pylint: disable=redefined-builtin
                                 narrow_range=False, device="cpu"):
  return _fake_quant_vars("fake_quant_with_min_max_vars", (inputs, min, max),
                          num_bits, narrow_range, device)


def fake_quant_with_min_max_vars_gradient(gradients, inputs, min, max,  # pylint: disable=redefined-builtin
                                          num_bits=8, narrow_range=False,
                                          device="cpu"):
  return _fake_quant_vars("fake_quant_with_min_max_vars_gradient",
                          (gradients, inputs, min, max), num_bits,
                          narrow_range, device)


def fake_quant_with_min_max_vars_per_channel(inputs, min, max, num_bits=8,  # pylint: disable=redefined-builtin
                                             narrow_range=False, device="cpu"):
  return _fake_quant_vars("fake_quant_with_min_max_vars_per_channel",
                          (inputs, min, max), num_bits, narrow_range, device)


def fake_quant_with_min_max_vars_per_channel_gradient(gradients, inputs, min,  # pylint: disable=redefined-builtin
                                                      max, num_bits=8,
                                                      narrow_range=False,
                                                      device="cpu"):
  wrt_input, wrt_min, wrt_max = _fake_quant_vars(
      "fake_quant_with_min_max_vars_per_channel_gradient",
      (gradients, inputs, min, max), num_bits, narrow_range, device)
  # The range backprops have the ranges' shape [depth], also when the input
  # is [1] or [1, 1] (which the kernels see as one channel).
  depth = (np.shape(inputs)[-1],) if np.ndim(inputs) else np.shape(wrt_min)
  return wrt_input, wrt_min.reshape(depth), wrt_max.reshape(depth)
