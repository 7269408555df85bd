"""Graph-mode shape functions of the tf-qdq ops (docs/semantics.md §2.2, §3.2, §4.1, §5.1,
§6), compared with TensorFlow's built-in ops traced the same way.

Shapes are given to tf.function as tf.TensorSpec with unknown dims (None) or
unknown rank (shape=None). Errors surface as ValueError with TF's message,
followed by " for '{{node ...}} = ...' with input shapes: ...".
"""
import re

import numpy as np
import pytest
import tensorflow as tf

import tf_qdq

R = tf_qdq.raw_ops
U = None  # unknown rank
INT32_MAX = 2**31 - 1

# name -> (input names, our op, TF's op)
OPS = {
    "V4": (("input", "input_min", "input_max"),
           R.tf_qdq_quantize_and_dequantize_v4, tf.raw_ops.QuantizeAndDequantizeV4),
    "V4Grad": (("gradients", "input", "input_min", "input_max"),
               R.tf_qdq_quantize_and_dequantize_v4_grad,
               tf.raw_ops.QuantizeAndDequantizeV4Grad),
    "Args": (("inputs",), R.tf_qdq_fake_quant_with_min_max_args,
             tf.raw_ops.FakeQuantWithMinMaxArgs),
    "ArgsGrad": (("gradients", "inputs"),
                 R.tf_qdq_fake_quant_with_min_max_args_gradient,
                 tf.raw_ops.FakeQuantWithMinMaxArgsGradient),
    "Vars": (("inputs", "min", "max"), R.tf_qdq_fake_quant_with_min_max_vars,
             tf.raw_ops.FakeQuantWithMinMaxVars),
    "VarsGrad": (("gradients", "inputs", "min", "max"),
                 R.tf_qdq_fake_quant_with_min_max_vars_gradient,
                 tf.raw_ops.FakeQuantWithMinMaxVarsGradient),
    "PerChannel": (("inputs", "min", "max"),
                   R.tf_qdq_fake_quant_with_min_max_vars_per_channel,
                   tf.raw_ops.FakeQuantWithMinMaxVarsPerChannel),
    "PerChannelGrad": (("gradients", "inputs", "min", "max"),
                       R.tf_qdq_fake_quant_with_min_max_vars_per_channel_gradient,
                       tf.raw_ops.FakeQuantWithMinMaxVarsPerChannelGradient),
}


def _as_list(out):
  return list(out) if isinstance(out, (list, tuple)) else [out]


def trace(op, shapes, attrs=None, ours=True, dtype=tf.float32):
  """Traces the op in a tf.function: list of output shapes (as lists, or None
  for unknown rank), or raises ValueError."""
  names, our_op, tf_op = OPS[op]
  fn = our_op if ours else tf_op
  attrs = attrs or {}

  def body(*tensors):
    return fn(**dict(zip(names, tensors)), **attrs)

  specs = [tf.TensorSpec(s, dtype) for s in shapes]
  out = tf.function(body, autograph=False).get_concrete_function(
      *specs).structured_outputs
  return [o.shape.as_list() if o.shape.rank is not None else None
          for o in _as_list(out)]


def graph_error(op, shapes, attrs=None, ours=True):
  with pytest.raises(ValueError) as info:
    trace(op, shapes, attrs, ours)
  msg = str(info.value)
  assert " for '{{node " in msg
  return msg.split(" for '{{node ")[0].replace("TfQdq>", "")


# ---- output shapes ----------------------------------------------------------------

SHAPE_CASES = [
    # QuantizeAndDequantizeV4: output = input, partial shapes kept
    ("V4", ([None, 3], [], []), {}, [[None, 3]]),
    ("V4", ([2, None, 4], [None], [None]), dict(axis=1), [[2, None, 4]]),
    ("V4", ([None, None], [None], [4]), dict(axis=1), [[None, None]]),
    ("V4", ([5, 4], [5], [U]), dict(axis=0), [[5, 4]]),
    ("V4", (U, [2], [2]), dict(axis=1), [None]),
    ("V4", (U, U, U), {}, [None]),
    ("V4", (U, U, U), dict(axis=3), [None]),
    ("V4", ([], [], []), {}, [[]]),
    # QuantizeAndDequantizeV4Grad: docs/semantics.md §3.2's example, and variations
    ("V4Grad", ([None, 3], [5, None], [None], [5]), dict(axis=0),
     [[5, 3], [5], [5]]),
    ("V4Grad", ([None, 3], [5, None], [None], [4]), dict(axis=0),
     [[5, 3], [4], [4]]),
    ("V4Grad", ([5, 3], [5, 3], [None], [None]), dict(axis=0),
     [[5, 3], [None], [None]]),
    ("V4Grad", ([None, 3], [2, None], [], []), {}, [[2, 3], [], []]),
    ("V4Grad", (U, U, U, U), {}, [None, [], []]),
    ("V4Grad", (U, U, U, U), dict(axis=2), [None, [None], [None]]),
    ("V4Grad", (U, [4, 6], [6], U), dict(axis=1), [[4, 6], [6], [6]]),
    # FakeQuantWithMinMaxArgs(+Gradient): unchanged shape of input 0
    ("Args", ([None, 3],), {}, [[None, 3]]),
    ("Args", (U,), {}, [None]),
    ("Args", ([],), {}, [[]]),
    ("ArgsGrad", ([None, 3], [2, None]), {}, [[None, 3]]),
    ("ArgsGrad", ([3, 2], [2, 3]), {}, [[3, 2]]),  # no comparison of the two
    ("ArgsGrad", (U, [2]), {}, [None]),
    # FakeQuantWithMinMaxVars(+Gradient)
    ("Vars", ([None, 3], [], []), {}, [[None, 3]]),
    ("Vars", (U, U, U), {}, [None]),
    ("VarsGrad", ([None, 3], [2, None], [], []), {}, [[2, 3], [], []]),
    ("VarsGrad", (U, [4], U, U), {}, [[4], [], []]),
    ("VarsGrad", (U, U, U, U), {}, [None, [], []]),
    # FakeQuantWithMinMaxVarsPerChannel(+Gradient)
    ("PerChannel", ([None, 3], [None], [None]), {}, [[None, 3]]),
    ("PerChannel", ([2, None], [2], [None]), {}, [[2, None]]),
    ("PerChannel", (U, U, U), {}, [None]),
    ("PerChannel", ([1, 2, 3, 4, 5], [5], [5]), {}, [[1, 2, 3, 4, 5]]),
    ("PerChannelGrad", ([None, 3], [2, None], [None], [None]), {},
     [[2, 3], [3], [3]]),
    ("PerChannelGrad", ([2, None], [None, None], [None], [4]), {},
     [[2, None], [4], [4]]),
    ("PerChannelGrad", (U, U, U, U), {}, [None, [None], [None]]),
    ("PerChannelGrad", ([1, 2, 3, 4], [1, 2, 3, 4], [4], [4]), {},
     [[1, 2, 3, 4], [4], [4]]),
    ("PerChannelGrad", ([6], U, [None], U), {}, [[6], [6], [6]]),
]


@pytest.mark.parametrize("op,shapes,attrs,expected", SHAPE_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in SHAPE_CASES])
def test_output_shapes_match_tf(op, shapes, attrs, expected):
  assert trace(op, shapes, attrs) == expected
  assert trace(op, shapes, attrs, ours=False) == expected


def test_v4_grad_spec_example():
  """docs/semantics.md §3.2: gradients [None,3], input [5,None], min [None], max [5], axis 0."""
  out = trace("V4Grad", ([None, 3], [5, None], [None], [5]), dict(axis=0))
  assert out == [[5, 3], [5], [5]]


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float64])
def test_output_shapes_other_dtypes(dtype):
  assert trace("V4Grad", ([None, 3], [5, None], [None], [5]), dict(axis=0),
               dtype=dtype) == [[5, 3], [5], [5]]
  assert trace("PerChannelGrad", ([None, 3], [2, None], [None], [None]),
               dtype=dtype) == [[2, 3], [3], [3]]
  assert trace("Vars", ([None, 3], [], []), dtype=dtype) == [[None, 3]]
  assert trace("Args", ([4, None],), dtype=dtype) == [[4, None]]


def test_per_channel_gradient_accepts_rank_5():
  """Deviation: TF's graph shape function caps the rank at 4 (its kernel does
  not); ours accepts any rank >= 1."""
  shapes = ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [5], [5])
  assert trace("PerChannelGrad", shapes) == [[1, 2, 3, 4, 5], [5], [5]]
  assert graph_error("PerChannelGrad", shapes, ours=False) == (
      "Shape must be at most rank 4 but is rank 5")
  assert trace("PerChannelGrad", ([2, 1, 1, 1, 1, 1, 3], U, U, U)) == [
      [2, 1, 1, 1, 1, 1, 3], [3], [3]]


def test_per_channel_gradient_rank_5_runs_in_tf_function():
  x = tf.reshape(tf.range(-60., 60.) / 20., [1, 2, 3, 4, 5])
  mn, mx = -tf.ones([5]), tf.ones([5])

  @tf.function
  def f(x):
    return R.tf_qdq_fake_quant_with_min_max_vars_per_channel_gradient(
        gradients=tf.ones_like(x), inputs=x, min=mn, max=mx)

  got = f(x)
  want = tf.raw_ops.FakeQuantWithMinMaxVarsPerChannelGradient(
      gradients=tf.ones_like(x), inputs=x, min=mn, max=mx)  # eager: fine in TF
  for a, b in zip(got, want):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


# ---- shape-function errors --------------------------------------------------------

ERROR_CASES = [
    # V4, in the order of docs/semantics.md §2.2
    ("V4", ([2, 3], [2], []), {}, "Shape must be rank 0 but is rank 1"),
    ("V4", ([2, 3], [1], [1]), {}, "Shape must be rank 0 but is rank 1"),
    ("V4", ([2, 3], [], [2]), {}, "Shapes must be equal rank, but are 1 and 0"),
    ("V4", ([2, 3], [], []), dict(axis=0), "Shape must be rank 1 but is rank 0"),
    ("V4", ([2, 3], [], [2]), dict(axis=0), "Shape must be rank 1 but is rank 0"),
    ("V4", ([2, 3], [2], []), dict(axis=0),
     "Shapes must be equal rank, but are 0 and 1"),
    ("V4", ([2, 3], [2], [3]), dict(axis=0),
     "Dimension 0 in both shapes must be equal, but are 3 and 2. Shapes are [3] "
     "and [2]."),
    # a bad axis with scalar min/max reports the rank error first
    ("V4", ([2, 3], [], []), dict(axis=-2), "Shape must be rank 1 but is rank 0"),
    ("V4", ([2, 3], [2], [2]), dict(axis=-2), "axis should be at least -1, got -2"),
    ("V4", ([2, 3], [2], [2]), dict(axis=-100),
     "axis should be at least -1, got -100"),
    ("V4", (U, U, U), dict(axis=-100), "axis should be at least -1, got -100"),
    ("V4", ([2, 3], [2], [2]), dict(axis=INT32_MAX),
     "Axis cannot be >= kint32max value, got 2147483647"),
    ("V4", (U, U, U), dict(axis=INT32_MAX),
     "Axis cannot be >= kint32max value, got 2147483647"),
    ("V4", ([2, 3], [2], [2]), dict(axis=2),
     "Shape must be at least rank 3 but is rank 2"),
    ("V4", ([], [None], [None]), dict(axis=0),
     "Shape must be at least rank 1 but is rank 0"),
    ("V4", ([2, 3], [2], [2]), dict(axis=1), "Dimensions must be equal, but are 2 "
                                            "and 3"),
    ("V4", ([2, None, 4], [5], [None]), dict(axis=2),
     "Dimensions must be equal, but are 5 and 4"),
    # V4Grad: same range/axis checks on gradients, then gradients vs input
    ("V4Grad", ([2, 3], [2, 3], [1], []), {}, "Shape must be rank 0 but is rank 1"),
    ("V4Grad", ([2, 3], [2, 3], [], [1]), {},
     "Shapes must be equal rank, but are 1 and 0"),
    ("V4Grad", ([2, 3], [2, 3], [], []), dict(axis=1),
     "Shape must be rank 1 but is rank 0"),
    ("V4Grad", ([2, 3], [2, 3], [2], [3]), dict(axis=0),
     "Dimension 0 in both shapes must be equal, but are 3 and 2. Shapes are [3] "
     "and [2]."),
    ("V4Grad", ([2, 3], [2, 3], [2], [2]), dict(axis=-100),
     "axis should be at least -1, got -100"),
    ("V4Grad", ([2, 3], [2, 3], [2], [2]), dict(axis=INT32_MAX),
     "Axis cannot be >= kint32max value, got 2147483647"),
    # the axis rank check uses gradients, not input
    ("V4Grad", ([2, 3], [2, 4], [2], [2]), dict(axis=2),
     "Shape must be at least rank 3 but is rank 2"),
    ("V4Grad", ([2, 3, 4], [2, 4], [2], [2]), dict(axis=2),
     "Dimensions must be equal, but are 2 and 4"),
    ("V4Grad", ([2, 3], [2, 3], [4], [4]), dict(axis=1),
     "Dimensions must be equal, but are 4 and 3"),
    ("V4Grad", ([None, 3], [5, None], [None], [4]), dict(axis=1),
     "Dimensions must be equal, but are 4 and 3"),
    ("V4Grad", ([2, 3], [3, 3], [], []), {},
     "Dimension 0 in both shapes must be equal, but are 2 and 3. Shapes are [2,3] "
     "and [3,3]."),
    ("V4Grad", ([2, 3], [2], [], []), {},
     "Shapes must be equal rank, but are 2 and 1"),
    # Vars
    ("Vars", ([2], [1], []), {}, "Shape must be rank 0 but is rank 1"),
    ("Vars", ([2], [], [2, 2]), {}, "Shape must be rank 0 but is rank 2"),
    ("Vars", (U, [None], U), {}, "Shape must be rank 0 but is rank 1"),
    # VarsGrad
    ("VarsGrad", ([2], [3], [], []), {},
     "Dimension 0 in both shapes must be equal, but are 2 and 3. Shapes are [2] "
     "and [3]."),
    ("VarsGrad", ([2, 3], [2], [], []), {},
     "Shapes must be equal rank, but are 2 and 1"),
    ("VarsGrad", ([2], [2], [1], []), {}, "Shape must be rank 0 but is rank 1"),
    ("VarsGrad", ([2], [2], [], [1]), {},
     "Shapes must be equal rank, but are 0 and 1"),
    # PerChannel
    ("PerChannel", ([], [1], [1]), {}, "Shape must be at least rank 1 but is rank 0"),
    ("PerChannel", ([2, 3], [], [3]), {}, "Shape must be rank 1 but is rank 0"),
    ("PerChannel", ([2, 3], [3], []), {}, "Shape must be rank 1 but is rank 0"),
    ("PerChannel", ([2, 3], [3, 1], [3]), {}, "Shape must be rank 1 but is rank 2"),
    ("PerChannel", ([2, 3], [2], [3]), {}, "Dimensions must be equal, but are 3 and "
                                           "2"),
    ("PerChannel", ([2, 3], [3], [2]), {}, "Dimensions must be equal, but are 3 and "
                                           "2"),
    ("PerChannel", ([2, None], [2], [3]), {}, "Dimensions must be equal, but are 2 "
                                              "and 3"),
    # PerChannelGrad
    ("PerChannelGrad", ([], [], [1], [1]), {},
     "Shape must be at least rank 1 but is rank 0"),
    ("PerChannelGrad", ([2, 3], [2, 3], [], [3]), {},
     "Shape must be rank 1 but is rank 0"),
    ("PerChannelGrad", ([2, 3], [2, 3], [3, 1], [3]), {},
     "Shape must be rank 1 but is rank 2"),
    ("PerChannelGrad", ([2, 3], [2, 3], [3], []), {},
     "Shapes must be equal rank, but are 0 and 1"),
    ("PerChannelGrad", ([2, 3], [2, 3], [2], [3]), {},
     "Dimension 0 in both shapes must be equal, but are 2 and 3. Shapes are [2] "
     "and [3]."),
    ("PerChannelGrad", ([2, 3], [2, 3], [3], [2]), {},
     "Dimension 0 in both shapes must be equal, but are 2 and 3. Shapes are [2] "
     "and [3]."),
]


@pytest.mark.parametrize("op,shapes,attrs,expected", ERROR_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in ERROR_CASES])
def test_shape_errors_match_tf(op, shapes, attrs, expected):
  assert graph_error(op, shapes, attrs) == expected
  assert graph_error(op, shapes, attrs, ours=False) == expected


def test_shape_error_names_our_node():
  with pytest.raises(ValueError) as info:
    trace("Vars", ([2], [1], []))
  assert "{{node TfQdq>FakeQuantWithMinMaxVars}} = TfQdq>FakeQuantWithMinMaxVars[" \
      in str(info.value)
  assert str(info.value).endswith("with input shapes: [2], [1], [].")


GRADIENTS_VS_INPUTS = [
    ("PerChannelGrad", ([2, 3], [3, 2], [2], [2]),
     "Dimension 0 in both shapes must be equal, but are 2 and 3. Shapes are [2,3] "
     "and [3,2]."),
    ("PerChannelGrad", ([2, 3], [2], [3], [3]),
     "Shapes must be equal rank, but are 2 and 1"),
    ("PerChannelGrad", ([3], [2, 3], [3], [3]),
     "Shapes must be equal rank, but are 1 and 2"),
]


@pytest.mark.parametrize("op,shapes,expected", GRADIENTS_VS_INPUTS)
def test_per_channel_gradient_shape_mismatch_tf_message(op, shapes, expected):
  assert graph_error(op, shapes, ours=False) == expected


@pytest.mark.parametrize("op,shapes,expected", GRADIENTS_VS_INPUTS)
def test_per_channel_gradient_shape_mismatch_message(op, shapes, expected):
  assert graph_error(op, shapes) == expected


# ---- the Python wrappers in graph mode ----------------------------------------------


def test_python_wrappers_in_graph_mode():
  spec = tf.TensorSpec([None, 4], tf.float32)

  @tf.function(input_signature=[spec], autograph=False)
  def f(x):
    return (tf_qdq.quantize_and_dequantize_v2(x, -tf.ones([4]), tf.ones([4]),
                                              axis=-1),
            tf_qdq.quantize_and_dequantize(x, -1., 1.),
            tf_qdq.fake_quant_with_min_max_vars_per_channel(
                x, -tf.ones([4]), tf.ones([4])))

  out = f.get_concrete_function().structured_outputs
  assert [o.shape.as_list() for o in out] == [[None, 4]] * 3
  with pytest.raises(ValueError, match=re.escape(
      "Dimensions must be equal, but are 2 and 4")):
    tf.function(lambda x: tf_qdq.quantize_and_dequantize_v2(
        x, -tf.ones([2]), tf.ones([2]), axis=-1),
                autograph=False).get_concrete_function(spec)


def test_runtime_kernel_check_when_shape_function_passes():
  """Unknown-rank min/max pass the shape function; the kernel still checks."""
  u = tf.TensorSpec(None, tf.float32)
  x = tf.constant([[1., 2.], [3., 4.]])

  def run(op):
    f = tf.function(lambda x, a, b: op(input=x, input_min=a, input_max=b,
                                       range_given=True),
                    input_signature=[u, u, u])
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
      f(x, tf.zeros([2]), tf.constant(1.))
    return str(info.value)

  assert "input_min must be a scalar." in run(R.tf_qdq_quantize_and_dequantize_v4)
  assert "input_min must be a scalar." in run(tf.raw_ops.QuantizeAndDequantizeV4)
