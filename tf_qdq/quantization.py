"""The public tf-qdq functions: drop-in replacements for tf.quantization.*.

Each function is a thin call of the generated op wrapper: no work per call
beyond building the op, so eager calls on small tensors stay cheap. Inside an
XLA context (jit_compile), where the custom ops have no kernel, each builds the
equivalent composition of TensorFlow ops from tf_qdq._xla instead: same bits.
"""
import tensorflow as tf
from tensorflow.python import pywrap_tfe as _pywrap_tfe
from tensorflow.python.eager import context as _context
from tensorflow.python.framework import ops as _framework_ops

from tf_qdq import _xla
from tf_qdq._library import ops as _ops

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


_EagerTensor = _framework_ops.EagerTensor


def _fast_eager(op_type, name, first_input, *inputs_and_attrs):
  """Runs `op_type` through TF's eager fast path when `first_input` is already
  an eager tensor (so the op's T is its dtype), else returns None. On 1K-value
  tensors the Python layer is a large part of a call: this skips a second
  wrapper. Errors fall through (None) to the generated wrapper, which runs
  the op again and raises TF's exception."""
  if type(first_input) is not _EagerTensor:  # pylint: disable=unidiomatic-typecheck
    return None
  ctx = _context._context or _context.context()  # pylint: disable=protected-access
  if not ctx._thread_local_data.is_eager:  # pylint: disable=protected-access
    return None
  try:
    return _pywrap_tfe.TFE_Py_FastPathExecute(ctx, op_type, name, first_input,
                                              *inputs_and_attrs)
  except Exception:  # pylint: disable=broad-except
    return None


def _as_tensor(value):
  """Converts array-likes to tensors of THEIR dtype before the op is built:
  the generated wrappers would convert a NumPy float16 array to the default
  T=float32 and silently change the result's dtype."""
  return value if tf.is_tensor(value) else tf.convert_to_tensor(value)


# ---- QuantizeAndDequantize ---------------------------------------------------


def quantize_and_dequantize_v4(input, input_min, input_max, signed_input=True,  # pylint: disable=redefined-builtin
                               num_bits=8, range_given=False,
                               round_mode="HALF_TO_EVEN", narrow_range=False,
                               axis=-1, name=None):
  """The raw QuantizeAndDequantizeV4 op: `axis=-1` means per tensor.

  Per-channel with `range_given=True` works (TF 2.21 rejects every input
  there). The gradient is the identity when `range_given=False`.
  """
  result = _fast_eager("TfQdq>QuantizeAndDequantizeV4", name, input, input_min,
                       input_max, "signed_input", signed_input, "num_bits",
                       num_bits, "range_given", range_given, "round_mode",
                       round_mode, "narrow_range", narrow_range, "axis", axis)
  if result is not None:
    return result
  if _xla.in_xla_context():
    return _xla.quantize_and_dequantize_v4(input, input_min, input_max,
                                           signed_input, num_bits, range_given,
                                           round_mode, narrow_range, axis, name)
  return _ops.tf_qdq_quantize_and_dequantize_v4(
      input=_as_tensor(input), input_min=input_min, input_max=input_max,
      signed_input=signed_input, num_bits=num_bits, range_given=range_given,
      round_mode=round_mode, narrow_range=narrow_range, axis=axis, name=name)


def quantize_and_dequantize_v4_grad(gradients, input, input_min, input_max,  # pylint: disable=redefined-builtin
                                    axis=-1, name=None):
  """QuantizeAndDequantizeV4Grad: (input_backprop, min_backprop, max_backprop)."""
  result = _fast_eager("TfQdq>QuantizeAndDequantizeV4Grad", name, gradients,
                       input, input_min, input_max, "axis", axis)
  if result is not None:
    return _ops._TfQdq_QuantizeAndDequantizeV4GradOutput._make(result)  # pylint: disable=protected-access
  if _xla.in_xla_context():
    return _xla.quantize_and_dequantize_v4_grad(gradients, input, input_min,
                                                input_max, axis, name)
  return _ops.tf_qdq_quantize_and_dequantize_v4_grad(
      gradients=_as_tensor(gradients), input=input, input_min=input_min,
      input_max=input_max, axis=axis, name=name)


def _python_axis_to_op_axis(input, axis):  # pylint: disable=redefined-builtin
  """tf.quantization's axis convention: None is per tensor, negative counts
  from the end. Returns (input, op_axis)."""
  if axis is None:
    return input, -1
  if axis >= 0:
    return input, axis
  input = tf.convert_to_tensor(input)
  rank = input.shape.rank
  if rank is None:
    raise ValueError("input should have known rank to use negative axis.")
  if rank == 0:  # TF divides by the rank here (ZeroDivisionError)
    raise ValueError(
        f"axis {axis} needs an input of rank >= 1, got a rank-0 input.")
  return input, axis % rank  # as TF: -3 on a rank-2 input is axis 1


def quantize_and_dequantize_v2(input, input_min, input_max, signed_input=True,  # pylint: disable=redefined-builtin
                               num_bits=8, range_given=False,
                               round_mode="HALF_TO_EVEN", name=None,
                               narrow_range=False, axis=None):
  """As tf.quantization.quantize_and_dequantize_v2 (builds a V4 op).

  `axis=None` is per tensor; a negative axis counts from the end.
  """
  input, axis = _python_axis_to_op_axis(input, axis)
  return quantize_and_dequantize_v4(
      input, input_min, input_max, signed_input=signed_input,
      num_bits=num_bits, range_given=range_given, round_mode=round_mode,
      narrow_range=narrow_range, axis=axis, name=name)


def quantize_and_dequantize(input, input_min, input_max, signed_input=True,  # pylint: disable=redefined-builtin
                            num_bits=8, range_given=False,
                            round_mode="HALF_TO_EVEN", name=None,
                            narrow_range=False, axis=None):
  """As tf.quantization.quantize_and_dequantize: the legacy variant whose
  gradient is straight-through (the identity w.r.t. `input`, nothing for the
  range)."""
  input, axis = _python_axis_to_op_axis(input, axis)
  if _xla.in_xla_context():
    return tf.grad_pass_through(
        lambda x: _xla.quantize_and_dequantize_v4(
            x, input_min, input_max, signed_input, num_bits, range_given,
            round_mode, narrow_range, axis, name))(input)
  # As TF, a V2 op: the V4 kernel with a straight-through gradient registered,
  # which forward mode (ForwardAccumulator) honours too.
  return _ops.tf_qdq_quantize_and_dequantize_v2(
      input=_as_tensor(input), input_min=input_min, input_max=input_max,
      signed_input=signed_input, num_bits=num_bits, range_given=range_given,
      round_mode=round_mode, narrow_range=narrow_range, axis=axis, name=name)


# ---- FakeQuant ---------------------------------------------------------------


def fake_quant_with_min_max_args(inputs, min=-6.0, max=6.0, num_bits=8,  # pylint: disable=redefined-builtin
                                 narrow_range=False, name=None):
  """FakeQuantWithMinMaxArgs, for bfloat16, half, float and double inputs."""
  result = _fast_eager("TfQdq>FakeQuantWithMinMaxArgs", name, inputs, "min", min,
                       "max", max, "num_bits", num_bits, "narrow_range",
                       narrow_range)
  if result is not None:
    return result
  if _xla.in_xla_context():
    return _xla.fake_quant_with_min_max_args(inputs, min, max, num_bits,
                                             narrow_range, name)
  return _ops.tf_qdq_fake_quant_with_min_max_args(
      inputs=_as_tensor(inputs), min=min, max=max, num_bits=num_bits,
      narrow_range=narrow_range, name=name)


def fake_quant_with_min_max_args_gradient(gradients, inputs, min=-6.0,  # pylint: disable=redefined-builtin
                                          max=6.0, num_bits=8,
                                          narrow_range=False, name=None):
  result = _fast_eager("TfQdq>FakeQuantWithMinMaxArgsGradient", name, gradients,
                       inputs, "min", min, "max", max, "num_bits", num_bits,
                       "narrow_range", narrow_range)
  if result is not None:
    return result
  if _xla.in_xla_context():
    return _xla.fake_quant_with_min_max_args_gradient(gradients, inputs, min,
                                                      max, num_bits,
                                                      narrow_range, name)
  return _ops.tf_qdq_fake_quant_with_min_max_args_gradient(
      gradients=_as_tensor(gradients), inputs=inputs, min=min, max=max,
      num_bits=num_bits, narrow_range=narrow_range, name=name)


def fake_quant_with_min_max_vars(inputs, min, max, num_bits=8,  # pylint: disable=redefined-builtin
                                 narrow_range=False, name=None):
  """FakeQuantWithMinMaxVars: min and max are scalar tensors of the input's
  dtype (they may be trainable variables)."""
  result = _fast_eager("TfQdq>FakeQuantWithMinMaxVars", name, inputs, min, max,
                       "num_bits", num_bits, "narrow_range", narrow_range)
  if result is not None:
    return result
  if _xla.in_xla_context():
    return _xla.fake_quant_with_min_max_vars(inputs, min, max, num_bits,
                                             narrow_range, name)
  return _ops.tf_qdq_fake_quant_with_min_max_vars(
      inputs=_as_tensor(inputs), min=min, max=max, num_bits=num_bits,
      narrow_range=narrow_range, name=name)


def fake_quant_with_min_max_vars_gradient(gradients, inputs, min, max,  # pylint: disable=redefined-builtin
                                          num_bits=8, narrow_range=False,
                                          name=None):
  """(backprops_wrt_input, backprop_wrt_min, backprop_wrt_max). The two sums
  are accumulated in double in a fixed order: independent of thread count."""
  result = _fast_eager("TfQdq>FakeQuantWithMinMaxVarsGradient", name, gradients,
                       inputs, min, max, "num_bits", num_bits, "narrow_range",
                       narrow_range)
  if result is not None:
    return _ops._TfQdq_FakeQuantWithMinMaxVarsGradientOutput._make(result)  # pylint: disable=protected-access
  if _xla.in_xla_context():
    return _xla.fake_quant_with_min_max_vars_gradient(gradients, inputs, min,
                                                      max, num_bits,
                                                      narrow_range, name)
  return _ops.tf_qdq_fake_quant_with_min_max_vars_gradient(
      gradients=_as_tensor(gradients), inputs=inputs, min=min, max=max,
      num_bits=num_bits, narrow_range=narrow_range, name=name)


def fake_quant_with_min_max_vars_per_channel(inputs, min, max, num_bits=8,  # pylint: disable=redefined-builtin
                                             narrow_range=False, name=None):
  """FakeQuantWithMinMaxVarsPerChannel: the channel is the last axis."""
  result = _fast_eager("TfQdq>FakeQuantWithMinMaxVarsPerChannel", name, inputs,
                       min, max, "num_bits", num_bits, "narrow_range",
                       narrow_range)
  if result is not None:
    return result
  if _xla.in_xla_context():
    return _xla.fake_quant_with_min_max_vars_per_channel(inputs, min, max,
                                                         num_bits, narrow_range,
                                                         name)
  return _ops.tf_qdq_fake_quant_with_min_max_vars_per_channel(
      inputs=_as_tensor(inputs), min=min, max=max, num_bits=num_bits,
      narrow_range=narrow_range, name=name)


def fake_quant_with_min_max_vars_per_channel_gradient(gradients, inputs, min,  # pylint: disable=redefined-builtin
                                                      max, num_bits=8,
                                                      narrow_range=False,
                                                      name=None):
  result = _fast_eager("TfQdq>FakeQuantWithMinMaxVarsPerChannelGradient", name,
                       gradients, inputs, min, max, "num_bits", num_bits,
                       "narrow_range", narrow_range)
  if result is not None:
    return _ops._TfQdq_FakeQuantWithMinMaxVarsPerChannelGradientOutput._make(result)  # pylint: disable=protected-access
  if _xla.in_xla_context():
    return _xla.fake_quant_with_min_max_vars_per_channel_gradient(
        gradients, inputs, min, max, num_bits, narrow_range, name)
  return _ops.tf_qdq_fake_quant_with_min_max_vars_per_channel_gradient(
      gradients=_as_tensor(gradients), inputs=inputs, min=min, max=max,
      num_bits=num_bits, narrow_range=narrow_range, name=name)
