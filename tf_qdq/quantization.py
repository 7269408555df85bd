"""The public tf-qdq functions: drop-in replacements for tf.quantization.*.

Each function is a thin call of the generated op wrapper: no work per call
beyond building the op, so eager calls on small tensors stay cheap. Inside an
XLA context (jit_compile), where the custom ops have no kernel, each builds the
equivalent composition of TensorFlow ops from tf_qdq._xla instead: same bits.
"""
import numpy as np
import tensorflow as tf

from tf_qdq import _xla
from tf_qdq._library import FLOAT_ONLY_SUFFIX as _FLOAT_ONLY_SUFFIX
from tf_qdq._library import ops as _ops
from tf_qdq._tf_internal import EagerTensor as _EagerTensor
from tf_qdq._tf_internal import context as _context
from tf_qdq._tf_internal import execute as _execute
from tf_qdq._tf_internal import pywrap_tfe as _pywrap_tfe

__all__ = [
    "quantize_and_dequantize",
    "quantize_and_dequantize_v2",
    "quantize_and_dequantize_v4",
    "quantize_and_dequantize_v4_grad",
    "fake_quant_with_min_max_args",
    "fake_quant_with_min_max_args_gradient",
    "fake_quant_with_min_max_vars",
    "fake_quant_with_min_max_vars_gradient",
    "fake_quant_with_min_max_vars_per_channel",
    "fake_quant_with_min_max_vars_per_channel_gradient",
]


def _eager_context(first_input):
  """TF's eager context when `first_input` is already an eager tensor and the
  thread executes eagerly, else None. Then the public function runs its op
  through TF's eager fast path (TFE_Py_FastPathExecute, T inferred from the
  input's dtype) itself, as TF's generated wrappers do: on 1K-value tensors
  the Python layer is a large part of a call, and this skips a second wrapper.
  The fast path call stays in each function (no helper taking *args: packing
  and unpacking them cost ~0.3 us of a ~6.5 us call). Errors fall through to
  the generated wrapper, which runs the op again and raises TF's exception.
  The is_eager check must stay: an eager tensor captured while tracing a
  tf.function must become a graph op."""
  if first_input.__class__ is _EagerTensor:
    ctx = _context._context  # pylint: disable=protected-access
    if ctx is not None and ctx._thread_local_data.is_eager:  # pylint: disable=protected-access
      return ctx
  return None


_fast_path = _pywrap_tfe.TFE_Py_FastPathExecute

# The fast paths of the FakeQuant functions run, for a float32 first input
# (`inputs`, or `gradients` for the gradient ops), the op's float-only twin
# (cc/tf/ops.cc): the same op and kernel without the type attr T, which costs
# 0.3-1.4 us of a 5-15 us eager call in TF's runtime. Its other inputs must then
# be float32 too, as T inferred from the first input would have required: any
# other input makes it raise, and the generated wrapper below runs the public
# op and raises its error or converts. `_datatype_enum()` is the cheap test
# (~0.1 us; `.dtype` builds a DType, ~0.3 us). Graphs get the public op.
_DT_FLOAT = tf.float32.as_datatype_enum
_ARGS = "TfQdq>FakeQuantWithMinMaxArgs"
_ARGS_GRADIENT = "TfQdq>FakeQuantWithMinMaxArgsGradient"
_VARS = "TfQdq>FakeQuantWithMinMaxVars"
_VARS_GRADIENT = "TfQdq>FakeQuantWithMinMaxVarsGradient"
_PER_CHANNEL = "TfQdq>FakeQuantWithMinMaxVarsPerChannel"
_PER_CHANNEL_GRADIENT = "TfQdq>FakeQuantWithMinMaxVarsPerChannelGradient"
_ARGS_FLOAT = _ARGS + _FLOAT_ONLY_SUFFIX
_ARGS_GRADIENT_FLOAT = _ARGS_GRADIENT + _FLOAT_ONLY_SUFFIX
_VARS_FLOAT = _VARS + _FLOAT_ONLY_SUFFIX
_VARS_GRADIENT_FLOAT = _VARS_GRADIENT + _FLOAT_ONLY_SUFFIX
_PER_CHANNEL_FLOAT = _PER_CHANNEL + _FLOAT_ONLY_SUFFIX
_PER_CHANNEL_GRADIENT_FLOAT = _PER_CHANNEL_GRADIENT + _FLOAT_ONLY_SUFFIX


def _xla_or_op(composition, op, **args):
  """Builds `op` (a generated wrapper of the op library) or, inside an XLA
  context, where the custom ops have no kernel, `composition` (its tf_qdq._xla
  entry point, same arguments): the two paths of every public function past
  the eager fast path."""
  if _xla.in_xla_context():
    return composition(**args)
  return op(**args)


def _as_tensor(value, *others):
  """Converts array-likes to tensors of THEIR dtype before the op is built:
  the generated wrappers would convert a NumPy float16 array to the default
  T=float32 and silently change the result's dtype. A Python list or scalar
  takes the dtype of the first floating-point tensor among `others`, as TF's
  eager wrappers match the inputs of one type attr (a list input with float64
  range tensors is float64)."""
  if tf.is_tensor(value):
    return value
  if not isinstance(value, (np.ndarray, np.generic)):
    for other in others:
      if tf.is_tensor(other) and other.dtype.is_floating:
        return tf.convert_to_tensor(value, dtype=other.dtype.base_dtype)
  return tf.convert_to_tensor(value)


# ---- attribute normalisation -------------------------------------------------
# Every path (TF's eager fast path, the generated wrappers in eager and graph
# mode, the XLA lowering) receives the attrs normalised here, so they agree:
# None is the op's default (as in TF's generated wrappers), values are
# converted and type-checked with TF's own functions and messages, and an int
# outside int64 raises ValueError here: TF's fast path would leave Python's
# OverflowError pending, and the next TF call would abort the process.

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _int_attr(value, name, default):
  if value is None:
    return default
  value = _execute.make_int(value, name)
  if not _INT64_MIN <= value <= _INT64_MAX:
    raise ValueError(f"Attr '{name}' is an int64: {value} is outside "
                     "[-2**63, 2**63 - 1].")
  return value


def _bool_attr(value, name, default):
  return default if value is None else _execute.make_bool(value, name)


def _float_attr(value, name, default):
  if value is None:
    return default
  try:
    return _execute.make_float(value, name)
  except OverflowError:
    raise ValueError(f"Attr '{name}' is a float: {value!r} does not fit one."
                     ) from None


def _string_attr(value, name, default):
  if value is None:
    return default
  value = _execute.make_str(value, name)
  try:
    return value.decode("utf-8")
  except UnicodeDecodeError:
    return value  # the op rejects it with TF's message


def _qdq_attrs(signed_input, num_bits, range_given, round_mode, narrow_range,
               axis):
  """In the op's attr order, as TF's wrappers check them. Exact bools, ints
  in int64 and a str are what TF's make_bool/make_int/make_str (decoded)
  would return unchanged: they skip those calls (~0.5 us of a 1K call)."""
  if (signed_input.__class__ is bool and num_bits.__class__ is int and
      range_given.__class__ is bool and round_mode.__class__ is str and
      narrow_range.__class__ is bool and axis.__class__ is int and
      _INT64_MIN <= num_bits <= _INT64_MAX and
      _INT64_MIN <= axis <= _INT64_MAX):
    return signed_input, num_bits, range_given, round_mode, narrow_range, axis
  return (_bool_attr(signed_input, "signed_input", True),
          _int_attr(num_bits, "num_bits", 8),
          _bool_attr(range_given, "range_given", False),
          _string_attr(round_mode, "round_mode", "HALF_TO_EVEN"),
          _bool_attr(narrow_range, "narrow_range", False),
          _int_attr(axis, "axis", -1))


# The common case first: an exact int in int64 and an exact bool (or float)
# are what TF's make_int/make_bool/make_float would return unchanged, and
# skipping those calls is most of the Python layer's cost on 1K values.
def _fake_quant_attrs(num_bits, narrow_range):
  if (num_bits.__class__ is int and narrow_range.__class__ is bool and
      _INT64_MIN <= num_bits <= _INT64_MAX):
    return num_bits, narrow_range
  return (_int_attr(num_bits, "num_bits", 8),
          _bool_attr(narrow_range, "narrow_range", False))


def _args_attrs(min, max, num_bits, narrow_range):  # pylint: disable=redefined-builtin
  if min.__class__ is float and max.__class__ is float:
    return (min, max) + _fake_quant_attrs(num_bits, narrow_range)
  return ((_float_attr(min, "min", -6.0), _float_attr(max, "max", 6.0)) +
          _fake_quant_attrs(num_bits, narrow_range))


# ---- QuantizeAndDequantize ---------------------------------------------------


def quantize_and_dequantize_v4(input, input_min, input_max, signed_input=True,  # pylint: disable=redefined-builtin
                               num_bits=8, range_given=False,
                               round_mode="HALF_TO_EVEN", narrow_range=False,
                               axis=-1, name=None):
  """The raw QuantizeAndDequantizeV4 op: `axis=-1` means per tensor.

  Per-channel with `range_given=True` works (TF 2.21 rejects every input
  there). The gradient is the identity when `range_given=False`.
  """
  attrs = _qdq_attrs(signed_input, num_bits, range_given, round_mode,
                     narrow_range, axis)
  return _qdq_v4(input, input_min, input_max, attrs, name)


def _qdq_v4(input, input_min, input_max, attrs, name):  # pylint: disable=redefined-builtin
  signed_input, num_bits, range_given, round_mode, narrow_range, axis = attrs
  ctx = _eager_context(input)
  if ctx is not None:
    try:
      return _fast_path(
          ctx, "TfQdq>QuantizeAndDequantizeV4", name, input, input_min,
          input_max, "signed_input", signed_input, "num_bits", num_bits,
          "range_given", range_given, "round_mode", round_mode,
          "narrow_range", narrow_range, "axis", axis)
    except Exception:  # pylint: disable=broad-except
      pass  # the generated wrapper below raises TF's error
  input = _as_tensor(input, input_min, input_max)
  return _xla_or_op(
      _xla.quantize_and_dequantize_v4, _ops.tf_qdq_quantize_and_dequantize_v4,
      input=input, input_min=input_min, input_max=input_max,
      signed_input=signed_input, num_bits=num_bits, range_given=range_given,
      round_mode=round_mode, narrow_range=narrow_range, axis=axis, name=name)


def quantize_and_dequantize_v4_grad(gradients, input, input_min, input_max,  # pylint: disable=redefined-builtin
                                    axis=-1, name=None):
  """QuantizeAndDequantizeV4Grad: (input_backprop, min_backprop,
  max_backprop)."""
  axis = _int_attr(axis, "axis", -1)
  ctx = _eager_context(gradients)
  if ctx is not None:
    try:
      result = _fast_path(
          ctx, "TfQdq>QuantizeAndDequantizeV4Grad", name, gradients, input,
          input_min, input_max, "axis", axis)
      return _ops._TfQdq_QuantizeAndDequantizeV4GradOutput._make(result)  # pylint: disable=protected-access
    except Exception:  # pylint: disable=broad-except
      pass  # the generated wrapper below raises TF's error
  gradients = _as_tensor(gradients, input, input_min, input_max)
  return _xla_or_op(
      _xla.quantize_and_dequantize_v4_grad,
      _ops.tf_qdq_quantize_and_dequantize_v4_grad, gradients=gradients,
      input=input, input_min=input_min, input_max=input_max, axis=axis,
      name=name)


def _python_attrs(input, signed_input, num_bits, range_given, round_mode,  # pylint: disable=redefined-builtin
                  narrow_range, axis):
  """The attrs of tf.quantization's wrappers, whose axis convention is None
  for per tensor and negative from the end (mapped as TF maps it, `axis %
  rank`). Returns (input, attrs)."""
  if axis is not None:
    axis = _execute.make_int(axis, "axis")
  if axis is None:
    axis = -1
  elif axis < 0:
    input = _as_tensor(input)
    rank = input.shape.rank
    if rank is None:
      raise ValueError("input should have known rank to use negative axis.")
    if rank == 0:  # TF divides by the rank here (ZeroDivisionError)
      raise ValueError(
          f"axis {axis} needs an input of rank >= 1, got a rank-0 input.")
    axis %= rank  # as TF: -3 on a rank-2 input is axis 1
  return input, _qdq_attrs(signed_input, num_bits, range_given, round_mode,
                           narrow_range, axis)


def quantize_and_dequantize_v2(input, input_min, input_max, signed_input=True,  # pylint: disable=redefined-builtin
                               num_bits=8, range_given=False,
                               round_mode="HALF_TO_EVEN", name=None,
                               narrow_range=False, axis=None):
  """As tf.quantization.quantize_and_dequantize_v2 (builds a V4 op).

  `axis=None` is per tensor; a negative axis counts from the end.
  """
  input, attrs = _python_attrs(input, signed_input, num_bits, range_given,
                               round_mode, narrow_range, axis)
  return _qdq_v4(input, input_min, input_max, attrs, name)


def quantize_and_dequantize(input, input_min, input_max, signed_input=True,  # pylint: disable=redefined-builtin
                            num_bits=8, range_given=False,
                            round_mode="HALF_TO_EVEN", name=None,
                            narrow_range=False, axis=None):
  """As tf.quantization.quantize_and_dequantize: the legacy variant whose
  gradient is straight-through (the identity w.r.t. `input`, nothing for the
  range)."""
  input, attrs = _python_attrs(input, signed_input, num_bits, range_given,
                               round_mode, narrow_range, axis)
  input = _as_tensor(input, input_min, input_max)
  # As TF, a V2 op: the V4 kernel with a straight-through gradient registered,
  # which forward mode (ForwardAccumulator) honours too (under XLA, V4's
  # composition behind tf.grad_pass_through).
  signed_input, num_bits, range_given, round_mode, narrow_range, axis = attrs
  return _xla_or_op(
      _xla.quantize_and_dequantize_v2, _ops.tf_qdq_quantize_and_dequantize_v2,
      input=input, input_min=input_min, input_max=input_max,
      signed_input=signed_input, num_bits=num_bits, range_given=range_given,
      round_mode=round_mode, narrow_range=narrow_range, axis=axis, name=name)


# ---- FakeQuant ---------------------------------------------------------------


def fake_quant_with_min_max_args(inputs, min=-6.0, max=6.0, num_bits=8,  # pylint: disable=redefined-builtin
                                 narrow_range=False, name=None):
  """FakeQuantWithMinMaxArgs, for bfloat16, half, float and double inputs."""
  min, max, num_bits, narrow_range = _args_attrs(min, max, num_bits,
                                                 narrow_range)
  ctx = _eager_context(inputs)
  if ctx is not None:
    try:
      return _fast_path(
          ctx, _ARGS_FLOAT if inputs._datatype_enum() == _DT_FLOAT else _ARGS,
          name, inputs, "min", min, "max", max, "num_bits", num_bits,
          "narrow_range", narrow_range)
    except Exception:  # pylint: disable=broad-except
      pass  # the generated wrapper below raises TF's error
  inputs = _as_tensor(inputs)
  return _xla_or_op(
      _xla.fake_quant_with_min_max_args,
      _ops.tf_qdq_fake_quant_with_min_max_args, inputs=inputs, min=min,
      max=max, num_bits=num_bits, narrow_range=narrow_range, name=name)


def fake_quant_with_min_max_args_gradient(gradients, inputs, min=-6.0,  # pylint: disable=redefined-builtin
                                          max=6.0, num_bits=8,
                                          narrow_range=False, name=None):
  min, max, num_bits, narrow_range = _args_attrs(min, max, num_bits,
                                                 narrow_range)
  ctx = _eager_context(gradients)
  if ctx is not None:
    try:
      return _fast_path(
          ctx, (_ARGS_GRADIENT_FLOAT if gradients._datatype_enum() == _DT_FLOAT
                else _ARGS_GRADIENT),
          name, gradients, inputs, "min", min, "max", max, "num_bits",
          num_bits, "narrow_range", narrow_range)
    except Exception:  # pylint: disable=broad-except
      pass  # the generated wrapper below raises TF's error
  gradients = _as_tensor(gradients, inputs)
  return _xla_or_op(
      _xla.fake_quant_with_min_max_args_gradient,
      _ops.tf_qdq_fake_quant_with_min_max_args_gradient, gradients=gradients,
      inputs=inputs, min=min, max=max, num_bits=num_bits,
      narrow_range=narrow_range, name=name)


def fake_quant_with_min_max_vars(inputs, min, max, num_bits=8,  # pylint: disable=redefined-builtin
                                 narrow_range=False, name=None):
  """FakeQuantWithMinMaxVars: min and max are scalar tensors of the input's
  dtype (they may be trainable variables)."""
  num_bits, narrow_range = _fake_quant_attrs(num_bits, narrow_range)
  ctx = _eager_context(inputs)
  if ctx is not None:
    try:
      return _fast_path(
          ctx, _VARS_FLOAT if inputs._datatype_enum() == _DT_FLOAT else _VARS,
          name, inputs, min, max, "num_bits", num_bits, "narrow_range",
          narrow_range)
    except Exception:  # pylint: disable=broad-except
      pass  # the generated wrapper below raises TF's error
  inputs = _as_tensor(inputs, min, max)
  return _xla_or_op(
      _xla.fake_quant_with_min_max_vars,
      _ops.tf_qdq_fake_quant_with_min_max_vars, inputs=inputs, min=min,
      max=max, num_bits=num_bits, narrow_range=narrow_range, name=name)


def fake_quant_with_min_max_vars_gradient(gradients, inputs, min, max,  # pylint: disable=redefined-builtin
                                          num_bits=8, narrow_range=False,
                                          name=None):
  """(backprops_wrt_input, backprop_wrt_min, backprop_wrt_max). The two sums
  are accumulated in double in a fixed order: independent of thread count."""
  num_bits, narrow_range = _fake_quant_attrs(num_bits, narrow_range)
  ctx = _eager_context(gradients)
  if ctx is not None:
    try:
      result = _fast_path(
          ctx, (_VARS_GRADIENT_FLOAT if gradients._datatype_enum() == _DT_FLOAT
                else _VARS_GRADIENT),
          name, gradients, inputs, min, max, "num_bits", num_bits,
          "narrow_range", narrow_range)
      return _ops._TfQdq_FakeQuantWithMinMaxVarsGradientOutput._make(result)  # pylint: disable=protected-access
    except Exception:  # pylint: disable=broad-except
      pass  # the generated wrapper below raises TF's error
  gradients = _as_tensor(gradients, inputs, min, max)
  return _xla_or_op(
      _xla.fake_quant_with_min_max_vars_gradient,
      _ops.tf_qdq_fake_quant_with_min_max_vars_gradient, gradients=gradients,
      inputs=inputs, min=min, max=max, num_bits=num_bits,
      narrow_range=narrow_range, name=name)


def fake_quant_with_min_max_vars_per_channel(inputs, min, max, num_bits=8,  # pylint: disable=redefined-builtin
                                             narrow_range=False, name=None):
  """FakeQuantWithMinMaxVarsPerChannel: the channel is the last axis."""
  num_bits, narrow_range = _fake_quant_attrs(num_bits, narrow_range)
  ctx = _eager_context(inputs)
  if ctx is not None:
    try:
      return _fast_path(
          ctx, (_PER_CHANNEL_FLOAT if inputs._datatype_enum() == _DT_FLOAT
                else _PER_CHANNEL),
          name, inputs, min, max, "num_bits", num_bits, "narrow_range",
          narrow_range)
    except Exception:  # pylint: disable=broad-except
      pass  # the generated wrapper below raises TF's error
  inputs = _as_tensor(inputs, min, max)
  return _xla_or_op(
      _xla.fake_quant_with_min_max_vars_per_channel,
      _ops.tf_qdq_fake_quant_with_min_max_vars_per_channel, inputs=inputs,
      min=min, max=max, num_bits=num_bits, narrow_range=narrow_range,
      name=name)


def fake_quant_with_min_max_vars_per_channel_gradient(gradients, inputs, min,  # pylint: disable=redefined-builtin
                                                      max, num_bits=8,
                                                      narrow_range=False,
                                                      name=None):
  num_bits, narrow_range = _fake_quant_attrs(num_bits, narrow_range)
  ctx = _eager_context(gradients)
  if ctx is not None:
    try:
      result = _fast_path(
          ctx, (_PER_CHANNEL_GRADIENT_FLOAT
                if gradients._datatype_enum() == _DT_FLOAT
                else _PER_CHANNEL_GRADIENT),
          name, gradients, inputs, min, max, "num_bits", num_bits,
          "narrow_range", narrow_range)
      outputs = _ops._TfQdq_FakeQuantWithMinMaxVarsPerChannelGradientOutput  # pylint: disable=protected-access
      return outputs._make(result)
    except Exception:  # pylint: disable=broad-except
      pass  # the generated wrapper below raises TF's error
  gradients = _as_tensor(gradients, inputs, min, max)
  return _xla_or_op(
      _xla.fake_quant_with_min_max_vars_per_channel_gradient,
      _ops.tf_qdq_fake_quant_with_min_max_vars_per_channel_gradient,
      gradients=gradients, inputs=inputs, min=min, max=max, num_bits=num_bits,
      narrow_range=narrow_range, name=name)
