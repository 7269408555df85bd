"""Gradient registrations for the TfQdq> ops.

First order follows TensorFlow (forward op -> gradient op, attrs copied), with
one fix: QDQ V4 with range_given=False has the identity gradient (TF masks with
the min/max inputs that its forward pass ignored).

Second order and forward mode (tf.autodiff.ForwardAccumulator, which is built
on these functions) work through every op. TF raises TypeError for V4Grad and
marks its FakeQuant gradients NotDifferentiable. Each gradient op is linear in
`gradients` and piecewise constant in everything else, so its own gradient is
the transposed linear map w.r.t. `gradients` and zero w.r.t. the rest.
"""
import tensorflow as tf

from tf_qdq._library import FLOAT_ONLY_SUFFIX as _FLOAT_ONLY_SUFFIX
from tf_qdq._library import ops as _ops

_QDQ_V2 = "TfQdq>QuantizeAndDequantizeV2"
_QDQ_V4 = "TfQdq>QuantizeAndDequantizeV4"
_QDQ_V4_GRAD = "TfQdq>QuantizeAndDequantizeV4Grad"
_ARGS = "TfQdq>FakeQuantWithMinMaxArgs"
_ARGS_GRAD = "TfQdq>FakeQuantWithMinMaxArgsGradient"
_VARS = "TfQdq>FakeQuantWithMinMaxVars"
_VARS_GRAD = "TfQdq>FakeQuantWithMinMaxVarsGradient"
_PER_CHANNEL = "TfQdq>FakeQuantWithMinMaxVarsPerChannel"
_PER_CHANNEL_GRAD = "TfQdq>FakeQuantWithMinMaxVarsPerChannelGradient"


def _register_fake_quant_gradient(op_type):
  """Registers the decorated function as the gradient of the FakeQuant op
  `op_type` and of its float-only twin, which a GradientTape records around
  an eager float32 call. The twin has the same inputs and attrs but no T,
  which these functions do not read."""
  def register(gradient_function):
    tf.RegisterGradient(op_type + _FLOAT_ONLY_SUFFIX)(gradient_function)
    return tf.RegisterGradient(op_type)(gradient_function)
  return register


def _fake_quant_attrs(op):
  return dict(num_bits=op.get_attr("num_bits"),
              narrow_range=op.get_attr("narrow_range"))


def _zeros_for(*tensors):
  return [tf.zeros_like(t) for t in tensors]


# ---- QuantizeAndDequantizeV4 -------------------------------------------------


@tf.RegisterGradient(_QDQ_V4)
def _quantize_and_dequantize_v4_grad(op, grad):
  x, input_min, input_max = op.inputs
  if not op.get_attr("range_given"):
    # The range came from the data, so every finite input is inside it.
    return [grad] + _zeros_for(input_min, input_max)
  return _ops.tf_qdq_quantize_and_dequantize_v4_grad(
      gradients=grad, input=x, input_min=input_min, input_max=input_max,
      axis=op.get_attr("axis"))


@tf.RegisterGradient(_QDQ_V2)
def _quantize_and_dequantize_v2_grad(op, grad):
  # The legacy op is straight-through, as TF's QuantizeAndDequantizeV2.
  del op
  return [grad, None, None]


@tf.RegisterGradient(_QDQ_V4_GRAD)
def _quantize_and_dequantize_v4_grad_grad(op, grad_input_backprop, *_):
  # input_backprop = gradients * mask, and the range backprops are zeros.
  gradients, x, input_min, input_max = op.inputs
  if grad_input_backprop is None:
    d_gradients = tf.zeros_like(gradients)
  else:
    d_gradients = _ops.tf_qdq_quantize_and_dequantize_v4_grad(
        gradients=grad_input_backprop, input=x, input_min=input_min,
        input_max=input_max, axis=op.get_attr("axis"))[0]
  return [d_gradients] + _zeros_for(x, input_min, input_max)


# ---- FakeQuantWithMinMaxArgs -------------------------------------------------


def _args_attrs(op):
  return dict(min=op.get_attr("min"), max=op.get_attr("max"),
              **_fake_quant_attrs(op))


@_register_fake_quant_gradient(_ARGS)
def _fake_quant_args_grad(op, grad):
  return _ops.tf_qdq_fake_quant_with_min_max_args_gradient(
      gradients=grad, inputs=op.inputs[0], **_args_attrs(op))


@_register_fake_quant_gradient(_ARGS_GRAD)
def _fake_quant_args_grad_grad(op, grad):
  # backprops = gradients * between: the map is its own transpose.
  x = op.inputs[1]
  d_gradients = _ops.tf_qdq_fake_quant_with_min_max_args_gradient(
      gradients=grad, inputs=x, **_args_attrs(op))
  return [d_gradients, tf.zeros_like(x)]


# ---- FakeQuantWithMinMaxVars(PerChannel) -------------------------------------


@_register_fake_quant_gradient(_VARS)
def _fake_quant_vars_grad(op, grad):
  x, min_, max_ = op.inputs
  return _ops.tf_qdq_fake_quant_with_min_max_vars_gradient(
      gradients=grad, inputs=x, min=min_, max=max_, **_fake_quant_attrs(op))


@_register_fake_quant_gradient(_PER_CHANNEL)
def _fake_quant_per_channel_grad(op, grad):
  x, min_, max_ = op.inputs
  return _ops.tf_qdq_fake_quant_with_min_max_vars_per_channel_gradient(
      gradients=grad, inputs=x, min=min_, max=max_, **_fake_quant_attrs(op))


def _below_above_masks(x, min_per_element, max_per_element, attrs):
  """Per-element [x < nudged_min] and [x > nudged_max], computed by the
  kernels' own nudge: the per-channel gradient op with one channel per element
  and a gradient of ones returns exactly these masks as its range "sums"."""
  flat = tf.reshape(x, [1, -1])
  gradient = _ops.tf_qdq_fake_quant_with_min_max_vars_per_channel_gradient
  _, below, above = gradient(
      gradients=tf.ones_like(flat), inputs=flat, min=min_per_element,
      max=max_per_element, **attrs)
  shape = tf.shape(x)
  return tf.reshape(below, shape), tf.reshape(above, shape)


def _vars_gradient_transpose(op, grad_wrt_input, grad_wrt_min, grad_wrt_max,
                             gradient_op, min_per_element, max_per_element):
  """Transpose of gradients -> (g * between, sum(g * below), sum(g * above))."""
  gradients, x, min_, max_ = op.inputs
  attrs = _fake_quant_attrs(op)
  if grad_wrt_input is None:
    d_gradients = tf.zeros_like(gradients)
  else:
    d_gradients = gradient_op(gradients=grad_wrt_input, inputs=x, min=min_,
                              max=max_, **attrs)[0]
  if grad_wrt_min is not None or grad_wrt_max is not None:
    below, above = _below_above_masks(x, min_per_element(), max_per_element(),
                                      attrs)
    if grad_wrt_min is not None:
      d_gradients += grad_wrt_min * below
    if grad_wrt_max is not None:
      d_gradients += grad_wrt_max * above
  return [d_gradients] + _zeros_for(x, min_, max_)


@_register_fake_quant_gradient(_VARS_GRAD)
def _fake_quant_vars_grad_grad(op, grad_wrt_input, grad_wrt_min, grad_wrt_max):
  x, min_, max_ = op.inputs[1:]
  n = tf.reshape(tf.size(x), [1])
  return _vars_gradient_transpose(
      op, grad_wrt_input, grad_wrt_min, grad_wrt_max,
      _ops.tf_qdq_fake_quant_with_min_max_vars_gradient,
      lambda: tf.fill(n, min_), lambda: tf.fill(n, max_))


@_register_fake_quant_gradient(_PER_CHANNEL_GRAD)
def _fake_quant_per_channel_grad_grad(op, grad_wrt_input, grad_wrt_min,
                                      grad_wrt_max):
  x, min_, max_ = op.inputs[1:]
  # Element i of the flattened input belongs to channel i % depth.
  rows = tf.reshape(tf.size(x) // tf.maximum(tf.size(min_), 1), [1])
  return _vars_gradient_transpose(
      op, grad_wrt_input, grad_wrt_min, grad_wrt_max,
      _ops.tf_qdq_fake_quant_with_min_max_vars_per_channel_gradient,
      lambda: tf.tile(min_, rows), lambda: tf.tile(max_, rows))


# ---- FakeQuantWithMovingAverage (tf_qdq.keras' training step) ----------------


@tf.RegisterGradient("TfQdq>FakeQuantWithMovingAverage")
def _fake_quant_moving_average_grad(op, grad, *_):
  # The layer does not train its range (a moving average), so only the
  # input's gradient: FakeQuantWithMinMaxVars' on the grid the op quantized
  # on, through the fused activation (FakeQuantWithMovingAverageGradient).
  x = op.inputs[0]
  if grad is None:
    return [None] * 4
  wrt_input = _ops.tf_qdq_fake_quant_with_moving_average_gradient(
      gradients=grad, inputs=x, grid_min=op.outputs[4], grid_max=op.outputs[5],
      activation=op.get_attr("activation"), **_fake_quant_attrs(op))
  return [wrt_input, None, None, None]


@tf.RegisterGradient("TfQdq>FakeQuantWithMovingAverageGradient")
def _fake_quant_moving_average_grad_grad(op, grad):
  # backprops = gradients * mask(inputs): the map is its own transpose.
  gradients, x, grid_min, grid_max = op.inputs
  if grad is None:
    d_gradients = tf.zeros_like(gradients)
  else:
    d_gradients = _ops.tf_qdq_fake_quant_with_moving_average_gradient(
        gradients=grad, inputs=x, grid_min=grid_min, grid_max=grid_max,
        activation=op.get_attr("activation"), **_fake_quant_attrs(op))
  return [d_gradients] + _zeros_for(x, grid_min, grid_max)
