"""Eager kernel validation of every tf-qdq op (docs/semantics.md §2.3, §3.3, §4.2, §5.2, §6).

Each bad input must raise the exception TensorFlow raises, with TF's message.
Where TF's built-in op produces the same error, it is run too and both messages
are compared (modulo the `TfQdq>` op-type prefix). Deliberate deviations from
TF (per-channel QDQ V4 with a given range, per-channel FakeQuant with a scalar
input, NumPy input with a negative Python axis) are tested against our
documented behaviour instead.
"""
import re

import numpy as np
import pytest
import tensorflow as tf

import tf_qdq
from _cases import (ARGS_ERRORS, F, NUM_BITS_MSG, PER_CHANNEL_ERRORS,
                    V4_ERRORS, V4_GRAD_ERRORS, VARS_ERRORS, VARS_GRAD_ERRORS,
                    X, XT)

R = tf_qdq.raw_ops

# ---- helpers -------------------------------------------------------------------


def core_message(error):
  """The kernel's own message: no function-node prefix, no [Op:...] suffix,
  no NodeDef dump, and no `TfQdq>` namespace."""
  msg = getattr(error, "message", None) or str(error)
  msg = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", msg)
  msg = msg.split("\n\t; NodeDef:")[0]
  msg = re.sub(r"\s*\[Op:[^\]]*\](\s*name:.*)?$", "", msg, flags=re.S)
  return msg.replace("TfQdq>", "").strip()


def raises(fn, exc=tf.errors.InvalidArgumentError):
  with pytest.raises(exc) as info:
    fn()
  return core_message(info.value)


def check_error(ours, expected, theirs=None, exc=tf.errors.InvalidArgumentError):
  """`ours` raises `exc` with exactly `expected`; so does TF's op if given."""
  got = raises(ours, exc)
  assert got == expected
  if theirs is not None:
    assert raises(theirs, exc) == got


def assert_bitwise_equal(a, b):
  a, b = np.asarray(a), np.asarray(b)
  assert a.dtype == b.dtype and a.shape == b.shape
  assert a.tobytes() == b.tobytes(), (a, b)



# ---- QuantizeAndDequantizeV4 ---------------------------------------------------


def v4(**kw):
  kw.setdefault("input", X)
  kw.setdefault("input_min", F(0.))
  kw.setdefault("input_max", F(1.))
  return lambda: R.tf_qdq_quantize_and_dequantize_v4(**kw)


def tf_v4(**kw):
  kw.setdefault("input", X)
  kw.setdefault("input_min", F(0.))
  kw.setdefault("input_max", F(1.))
  return lambda: tf.raw_ops.QuantizeAndDequantizeV4(**kw)




@pytest.mark.parametrize("kw,expected", V4_ERRORS,
                         ids=[e[1][:48] for e in V4_ERRORS])
def test_v4_errors_match_tf(kw, expected):
  check_error(v4(**kw), expected, tf_v4(**kw))


def test_v4_round_mode_not_in_list():
  expected = ('Value for attr \'round_mode\' of "HALF_DOWN" is not in the list of '
              'allowed values: "HALF_TO_EVEN", "HALF_UP"')
  check_error(v4(round_mode="HALF_DOWN"), expected, tf_v4(round_mode="HALF_DOWN"))


def test_v4_int_input_is_not_an_allowed_type():
  ints = dict(input=np.array([1, 2], np.int32), input_min=np.int32(0),
              input_max=np.int32(1))
  expected = ("Value for attr 'T' of int32 is not in the list of allowed values: "
              "bfloat16, half, float, double")
  check_error(v4(**ints), expected, tf_v4(**ints))


@pytest.mark.parametrize("num_bits,signed", [(1, True), (61, True), (1, False),
                                             (62, False)])
def test_v4_num_bits_limits_are_accepted(num_bits, signed):
  kw = dict(num_bits=num_bits, signed_input=signed)
  assert_bitwise_equal(v4(**kw)(), tf_v4(**kw)())


def test_v4_min_equal_max_is_allowed():
  kw = dict(range_given=True, input_min=F(1.), input_max=F(1.))
  assert_bitwise_equal(v4(**kw)(), tf_v4(**kw)())


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_v4_invalid_range_16_bit(dtype):
  kw = dict(input=tf.constant(X, dtype), input_min=tf.constant(2., dtype),
            input_max=tf.constant(1., dtype), range_given=True)
  check_error(v4(**kw), "Invalid range: input_min 2 > input_max 1")
  kw = dict(input=tf.constant(X, dtype), input_min=tf.zeros([3], dtype),
            range_given=True, input_max=tf.constant(1., dtype))
  check_error(v4(**kw), "input_min must be a scalar.")


# -- range_given=False: input_min/input_max are ignored, whatever their shape ---

IGNORED_RANGES = [
    dict(input_min=np.zeros([5, 5], F), input_max=np.ones([5, 5], F)),
    dict(input_min=np.zeros([2], F), input_max=F(1.)),
    dict(input_min=F(3.), input_max=F(-3.)),
    dict(input_min=F("nan"), input_max=np.zeros([0], F)),
    dict(axis=0, input_min=F(0.), input_max=F(1.)),
    dict(axis=1, input_min=np.zeros([7, 7], F), input_max=F(1.)),
    dict(axis=1, input_min=np.zeros([2], F), input_max=np.zeros([4], F)),
]


@pytest.mark.parametrize("kw", IGNORED_RANGES)
def test_v4_range_not_given_ignores_min_and_max(kw):
  axis = kw.get("axis", -1)
  reference = v4(axis=axis)()
  ours = v4(**kw)()
  assert_bitwise_equal(ours, reference)
  assert_bitwise_equal(ours, tf_v4(**kw)())


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float64])
def test_v4_range_not_given_ignores_min_and_max_all_dtypes(dtype):
  x = tf.constant(X, dtype)
  ref = R.tf_qdq_quantize_and_dequantize_v4(
      input=x, input_min=tf.constant(0., dtype), input_max=tf.constant(0., dtype),
      axis=1)
  got = R.tf_qdq_quantize_and_dequantize_v4(
      input=x, input_min=tf.zeros([4, 4], dtype), input_max=tf.ones([9], dtype),
      axis=1)
  assert_bitwise_equal(got.numpy(), ref.numpy())


def test_v4_empty_inputs():
  for kw in [dict(input=np.zeros([0, 3], F)),
             dict(input=np.zeros([0, 3], F), axis=1),
             dict(input=np.zeros([3, 0], F), axis=1, range_given=True,
                  input_min=np.zeros([0], F), input_max=np.zeros([0], F))]:
    out = v4(**kw)()
    assert out.shape == kw["input"].shape


# -- per channel with range_given=True: our deviation, V3's checks --------------


def tf_v3(**kw):
  kw.setdefault("input", X)
  kw.setdefault("input_min", F(0.))
  kw.setdefault("input_max", F(1.))
  return lambda: tf.raw_ops.QuantizeAndDequantizeV3(num_bits=8, **kw)


PER_CHANNEL_GIVEN_ERRORS = [
    (dict(axis=0, input_min=F(0.), input_max=np.ones([2], F)),
     "Shape must be rank 1 for input_min_tensor when the axis is specified"),
    (dict(axis=0, input_min=np.zeros([2, 1], F), input_max=np.ones([2], F)),
     "Shape must be rank 1 for input_min_tensor when the axis is specified"),
    (dict(axis=1, input_min=np.zeros([3], F), input_max=F(1.)),
     "Shape must be rank 1 for input_max_tensor when the axis is specified"),
    # rank of min before its size, min before max
    (dict(axis=0, input_min=F(0.), input_max=F(1.)),
     "Shape must be rank 1 for input_min_tensor when the axis is specified"),
    (dict(axis=0, input_min=np.zeros([3], F), input_max=F(1.)),
     "input_min_tensor has incorrect size, was 3 expected 2 to match dim 0 of the "
     "input "),
]


@pytest.mark.parametrize("kw,expected", PER_CHANNEL_GIVEN_ERRORS,
                         ids=[e[1][:40] for e in PER_CHANNEL_GIVEN_ERRORS])
def test_v4_per_channel_given_range_checks(kw, expected):
  got = raises(v4(range_given=True, **kw))
  if expected.endswith("input "):
    assert got.startswith(expected)
  else:
    assert got == expected
    # V3 (whose checks these are) gives the same message.
    assert raises(tf_v3(range_given=True, **kw)) == got


@pytest.mark.parametrize("kw,expected_prefix", [
    (dict(axis=0, input_min=np.zeros([3], F), input_max=np.ones([2], F)),
     "input_min_tensor has incorrect size, was 3 expected 2 to match dim 0 of the "
     "input "),
    (dict(axis=1, input_min=np.zeros([3], F), input_max=np.ones([2], F)),
     "input_max_tensor has incorrect size, was 2 expected 3 to match dim 1 of the "
     "input "),
    (dict(axis=1, input_min=np.zeros([0], F), input_max=np.ones([3], F)),
     "input_min_tensor has incorrect size, was 0 expected 3 to match dim 1 of the "
     "input "),
])
def test_v4_per_channel_given_range_size_checks(kw, expected_prefix):
  got = raises(v4(range_given=True, **kw))
  assert got.startswith(expected_prefix)


@pytest.mark.parametrize("kw", [
    dict(axis=0, input_min=np.zeros([3], F), input_max=np.ones([2], F)),
    dict(axis=1, input_min=np.zeros([3], F), input_max=np.ones([2], F)),
])
def test_v4_per_channel_given_range_size_message_matches_v3(kw):
  assert raises(v4(range_given=True, **kw)) == raises(
      tf_v3(range_given=True, **kw))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("round_mode", ["HALF_TO_EVEN", "HALF_UP"])
def test_v4_per_channel_given_range_works_like_v3(dtype, axis, round_mode):
  rng = np.random.default_rng(axis)
  x = rng.uniform(-3, 3, size=[4, 5]).astype(dtype)
  depth = x.shape[axis]
  mn = -rng.uniform(0.1, 2, size=[depth]).astype(dtype)
  mx = rng.uniform(0.1, 2, size=[depth]).astype(dtype)
  ours = R.tf_qdq_quantize_and_dequantize_v4(
      input=x, input_min=mn, input_max=mx, range_given=True, axis=axis,
      round_mode=round_mode)
  if round_mode == "HALF_TO_EVEN":  # V3 has no round_mode
    theirs = tf.raw_ops.QuantizeAndDequantizeV3(
        input=x, input_min=mn, input_max=mx, num_bits=8, range_given=True,
        axis=axis)
    assert_bitwise_equal(ours.numpy(), theirs.numpy())
  # Each channel is the per-tensor op on its slice with its own range.
  for c in range(depth):
    sl = np.take(x, c, axis=axis)
    ref = R.tf_qdq_quantize_and_dequantize_v4(
        input=sl, input_min=mn[c], input_max=mx[c], range_given=True,
        round_mode=round_mode)
    assert_bitwise_equal(np.take(ours.numpy(), c, axis=axis), ref.numpy())


def test_v4_per_channel_given_range_half():
  x = tf.constant(X, tf.float16)
  out = R.tf_qdq_quantize_and_dequantize_v4(
      input=x, input_min=tf.constant([-1., -4., -8.], tf.float16),
      input_max=tf.constant([1., 4., 8.], tf.float16), range_given=True, axis=1)
  assert out.dtype == tf.float16 and out.shape == [2, 3]
  check_error(
      v4(input=x, input_min=tf.constant(0., tf.float16),
         input_max=tf.constant([1.], tf.float16), range_given=True, axis=1),
      "Shape must be rank 1 for input_min_tensor when the axis is specified")


# ---- QuantizeAndDequantizeV4Grad -----------------------------------------------


def v4g(**kw):
  kw.setdefault("gradients", X)
  kw.setdefault("input", X)
  kw.setdefault("input_min", F(0.))
  kw.setdefault("input_max", F(1.))
  return lambda: R.tf_qdq_quantize_and_dequantize_v4_grad(**kw)


def tf_v4g(**kw):
  kw.setdefault("gradients", X)
  kw.setdefault("input", X)
  kw.setdefault("input_min", F(0.))
  kw.setdefault("input_max", F(1.))
  return lambda: tf.raw_ops.QuantizeAndDequantizeV4Grad(**kw)




@pytest.mark.parametrize("kw,expected", V4_GRAD_ERRORS,
                         ids=[e[1][:48] for e in V4_GRAD_ERRORS])
def test_v4_grad_errors_match_tf(kw, expected):
  check_error(v4g(**kw), expected, tf_v4g(**kw))


@pytest.mark.parametrize("kw", [
    dict(input_min=F(5.), input_max=F(1.)),  # min > max: no check, all masked
    dict(axis=0, input_min=np.array([3., -1.], F), input_max=np.array([1., 9.], F)),
    dict(axis=1, input_min=np.zeros([3], F), input_max=np.full([3], 4., F)),
    dict(gradients=np.zeros([0, 3], F), input=np.zeros([0, 3], F)),
    dict(gradients=np.zeros([2, 0], F), input=np.zeros([2, 0], F), axis=1,
         input_min=np.zeros([0], F), input_max=np.zeros([0], F)),
])
def test_v4_grad_valid_inputs_match_tf(kw):
  ours, theirs = v4g(**kw)(), tf_v4g(**kw)()
  for a, b in zip(ours, theirs):
    assert_bitwise_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_v4_grad_errors_16_bit(dtype):
  c = lambda v: tf.constant(v, dtype)
  check_error(v4g(gradients=c(XT), input=c(X), input_min=c(0.), input_max=c(1.)),
              "gradient and input must be the same size")
  check_error(v4g(gradients=c(X), input=c(X), input_min=c([0.]),
                  input_max=c(1.)),
              "input_min must be a scalar if axis is unspecified")
  check_error(v4g(gradients=c(X), input=c(X), input_min=c([0., 0.]),
                  input_max=c([1., 1., 1.]), axis=0),
              "max has incorrect size, expected 2 was 3")


# ---- FakeQuantWithMinMaxVars(+Gradient) ------------------------------------------


def fq_vars(**kw):
  kw.setdefault("inputs", X)
  kw.setdefault("min", F(0.))
  kw.setdefault("max", F(1.))
  return lambda: R.tf_qdq_fake_quant_with_min_max_vars(**kw)


def tf_fq_vars(**kw):
  kw.setdefault("inputs", X)
  kw.setdefault("min", F(0.))
  kw.setdefault("max", F(1.))
  return lambda: tf.raw_ops.FakeQuantWithMinMaxVars(**kw)


def fq_vars_grad(**kw):
  kw.setdefault("gradients", X)
  kw.setdefault("inputs", X)
  kw.setdefault("min", F(0.))
  kw.setdefault("max", F(1.))
  return lambda: R.tf_qdq_fake_quant_with_min_max_vars_gradient(**kw)


def tf_fq_vars_grad(**kw):
  kw.setdefault("gradients", X)
  kw.setdefault("inputs", X)
  kw.setdefault("min", F(0.))
  kw.setdefault("max", F(1.))
  return lambda: tf.raw_ops.FakeQuantWithMinMaxVarsGradient(**kw)





@pytest.mark.parametrize("kw,expected", VARS_ERRORS,
                         ids=[e[1][:40] for e in VARS_ERRORS])
def test_fake_quant_vars_errors_match_tf(kw, expected):
  check_error(fq_vars(**kw), expected, tf_fq_vars(**kw))




@pytest.mark.parametrize("kw,expected", VARS_GRAD_ERRORS,
                         ids=[e[1][:40] for e in VARS_GRAD_ERRORS])
def test_fake_quant_vars_gradient_errors_match_tf(kw, expected):
  check_error(fq_vars_grad(**kw), expected, tf_fq_vars_grad(**kw))


@pytest.mark.parametrize("kw", [
    dict(min=F(2.), max=F(1.)),  # no min < max check
    dict(min=F(0.), max=F(0.)),
    dict(min=F(1.), max=F(1.)),
    dict(min=F("nan"), max=F(1.)),
    dict(min=F(-np.inf), max=F(np.inf)),
    dict(num_bits=2, narrow_range=True),
    dict(num_bits=16),
])
def test_fake_quant_vars_no_range_check(kw):
  assert_bitwise_equal(fq_vars(**kw)().numpy(), tf_fq_vars(**kw)().numpy())
  ours, theirs = fq_vars_grad(**kw)(), tf_fq_vars_grad(**kw)()
  assert_bitwise_equal(ours[0].numpy(), theirs[0].numpy())
  for a, b in zip(ours[1:], theirs[1:]):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_fake_quant_vars_empty_input():
  e = np.zeros([0, 4], F)
  assert fq_vars(inputs=e)().shape == [0, 4]
  dx, dmin, dmax = fq_vars_grad(gradients=e, inputs=e)()
  assert dx.shape == [0, 4] and dmin.numpy() == 0 and dmax.numpy() == 0


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float64])
def test_fake_quant_vars_errors_other_dtypes(dtype):
  c = lambda v: tf.constant(v, dtype)
  check_error(fq_vars(inputs=c(X), min=c([0.]), max=c(1.)),
              "`min` must be rank 0 but is rank 1")
  check_error(fq_vars_grad(gradients=c(X), inputs=c(X), min=c(0.),
                           max=c([[1.]])),
              "`max` must be rank 0 but is rank 2")
  check_error(fq_vars_grad(gradients=c(XT), inputs=c(X), min=c(0.), max=c(1.)),
              "gradient and input must be the same size")


def test_fake_quant_range_dtype_must_match_input():
  x16 = tf.constant(X, tf.float16)
  check_error(fq_vars(inputs=x16, min=tf.constant(0., tf.float32),
                      max=tf.constant(1., tf.float16)),
              "cannot compute FakeQuantWithMinMaxVars as input #1(zero-based) was "
              "expected to be a half tensor but is a float tensor")


# ---- FakeQuantWithMinMaxArgs(+Gradient) --------------------------------------------


def fq_args(**kw):
  kw.setdefault("inputs", X)
  return lambda: R.tf_qdq_fake_quant_with_min_max_args(**kw)


def tf_fq_args(**kw):
  kw.setdefault("inputs", X)
  return lambda: tf.raw_ops.FakeQuantWithMinMaxArgs(**kw)


def fq_args_grad(**kw):
  kw.setdefault("gradients", X)
  kw.setdefault("inputs", X)
  return lambda: R.tf_qdq_fake_quant_with_min_max_args_gradient(**kw)


def tf_fq_args_grad(**kw):
  kw.setdefault("gradients", X)
  kw.setdefault("inputs", X)
  return lambda: tf.raw_ops.FakeQuantWithMinMaxArgsGradient(**kw)




@pytest.mark.parametrize("kw,expected", ARGS_ERRORS,
                         ids=[e[1][:40] for e in ARGS_ERRORS])
def test_fake_quant_args_errors_match_tf(kw, expected):
  check_error(fq_args(**kw), expected, tf_fq_args(**kw))
  check_error(fq_args_grad(**kw), expected, tf_fq_args_grad(**kw))


def test_fake_quant_args_gradient_shape_mismatch():
  part = ("must have the same size and shape.  Input 0: [3,2] != input 1: [2,3]")
  ours = raises(fq_args_grad(gradients=XT))
  theirs = raises(tf_fq_args_grad(gradients=XT))
  assert ours.endswith(part) and theirs.endswith(part)
  assert "FakeQuantWithMinMaxArgsGradient" in ours
  # same number of elements is not enough, and the check is per shape
  assert raises(fq_args_grad(gradients=X[:1])).endswith(
      "Input 0: [1,3] != input 1: [2,3]")


def test_fake_quant_args_gradient_shape_mismatch_names_our_op_type():
  with pytest.raises(tf.errors.InvalidArgumentError) as info:
    fq_args_grad(gradients=XT)()
  assert "of type TfQdq>FakeQuantWithMinMaxArgsGradient must have" in str(info.value)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float64])
def test_fake_quant_args_errors_other_dtypes(dtype):
  x = tf.constant(X, dtype)
  check_error(fq_args(inputs=x, min=3., max=3.),
              "min has to be smaller than max, was: 3 >= 3")
  check_error(fq_args_grad(gradients=x, inputs=x, num_bits=17), NUM_BITS_MSG)
  got = raises(fq_args_grad(gradients=tf.transpose(x), inputs=x))
  assert got.endswith("must have the same size and shape.  Input 0: [3,2] != "
                      "input 1: [2,3]")


# ---- FakeQuantWithMinMaxVarsPerChannel(+Gradient) ---------------------------------


def fq_pc(**kw):
  kw.setdefault("inputs", X)
  kw.setdefault("min", np.zeros([3], F))
  kw.setdefault("max", np.ones([3], F))
  return lambda: R.tf_qdq_fake_quant_with_min_max_vars_per_channel(**kw)


def tf_fq_pc(**kw):
  kw.setdefault("inputs", X)
  kw.setdefault("min", np.zeros([3], F))
  kw.setdefault("max", np.ones([3], F))
  return lambda: tf.raw_ops.FakeQuantWithMinMaxVarsPerChannel(**kw)


def fq_pc_grad(**kw):
  kw.setdefault("gradients", kw.get("inputs", X))
  kw.setdefault("inputs", X)
  kw.setdefault("min", np.zeros([3], F))
  kw.setdefault("max", np.ones([3], F))
  return lambda: R.tf_qdq_fake_quant_with_min_max_vars_per_channel_gradient(**kw)


def tf_fq_pc_grad(**kw):
  kw.setdefault("gradients", kw.get("inputs", X))
  kw.setdefault("inputs", X)
  kw.setdefault("min", np.zeros([3], F))
  kw.setdefault("max", np.ones([3], F))
  return lambda: tf.raw_ops.FakeQuantWithMinMaxVarsPerChannelGradient(**kw)




@pytest.mark.parametrize("kw,expected", PER_CHANNEL_ERRORS,
                         ids=[e[1][:40] for e in PER_CHANNEL_ERRORS])
def test_fake_quant_per_channel_errors_match_tf(kw, expected):
  check_error(fq_pc(**kw), expected, tf_fq_pc(**kw))
  check_error(fq_pc_grad(**kw), expected, tf_fq_pc_grad(**kw))


@pytest.mark.parametrize("kw", [
    dict(gradients=XT),
    dict(gradients=X[:1]),
    dict(gradients=XT, min=F(0.)),  # before the range checks
    dict(gradients=np.zeros([1], F), inputs=F(1.), min=np.zeros([1], F),
         max=np.ones([1], F)),  # before the scalar-input check
])
def test_fake_quant_per_channel_gradient_shape_mismatch(kw):
  check_error(fq_pc_grad(**kw), "gradient and input must be the same size",
              tf_fq_pc_grad(**kw))


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16, tf.float64])
def test_fake_quant_per_channel_scalar_input_is_an_error(dtype):
  """TF aborts the process here (docs/semantics.md §6.3); we raise InvalidArgument."""
  c = lambda v: tf.constant(v, dtype)
  for call in [
      fq_pc(inputs=c(1.), min=c([0.]), max=c([1.])),
      fq_pc(inputs=c(1.), min=c(0.), max=c(1.)),
      fq_pc_grad(gradients=c(1.), inputs=c(1.), min=c([0.]), max=c([1.])),
  ]:
    msg = raises(call)
    assert "rank 0" in msg


@pytest.mark.parametrize("shape", [[2, 0], [0, 3], [1, 2, 1, 2, 3], [3]])
def test_fake_quant_per_channel_valid_shapes_match_tf(shape):
  rng = np.random.default_rng(len(shape))
  x = rng.uniform(-2, 2, size=shape).astype(F)
  d = shape[-1]
  kw = dict(inputs=x, min=-np.linspace(0.5, 1.5, d).astype(F),
            max=np.linspace(0.5, 1.5, d).astype(F))
  assert_bitwise_equal(fq_pc(**kw)().numpy(), tf_fq_pc(**kw)().numpy())
  ours, theirs = fq_pc_grad(**kw)(), tf_fq_pc_grad(**kw)()
  assert_bitwise_equal(ours[0].numpy(), theirs[0].numpy())
  for a, b in zip(ours[1:], theirs[1:]):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


# ---- Python layer (tf.quantization-style wrappers) -----------------------------------

PY_QDQ = [tf_qdq.quantize_and_dequantize_v2, tf_qdq.quantize_and_dequantize]


@pytest.mark.parametrize("fn", PY_QDQ, ids=["v2", "legacy"])
def test_python_unknown_rank_negative_axis(fn):
  tf_fn = (tf.quantization.quantize_and_dequantize_v2
           if fn is tf_qdq.quantize_and_dequantize_v2
           else tf.quantization.quantize_and_dequantize)
  spec = tf.TensorSpec(None, tf.float32)
  expected = "input should have known rank to use negative axis."
  for f in (fn, tf_fn):
    with pytest.raises(ValueError, match=re.escape(expected)):
      tf.function(lambda t, f=f: f(t, -1., 1., axis=-1)).get_concrete_function(spec)


@pytest.mark.parametrize("fn", PY_QDQ, ids=["v2", "legacy"])
def test_python_rank0_negative_axis_is_value_error(fn):
  # TF raises ZeroDivisionError here; we raise ValueError.
  with pytest.raises(ValueError):
    fn(tf.constant(1.), -1., 1., axis=-1)
  with pytest.raises(ValueError):
    fn(np.float32(1.), -1., 1., axis=-1)


@pytest.mark.parametrize("fn", PY_QDQ, ids=["v2", "legacy"])
def test_python_numpy_input_negative_axis(fn):
  # TF raises AttributeError for NumPy input with a negative axis.
  got = fn(X, -1., 1., axis=-1)
  want = fn(tf.constant(X), -1., 1., axis=1)
  assert_bitwise_equal(got.numpy(), want.numpy())
  got = fn(X.tolist(), -1., 1., axis=-2)
  want = fn(tf.constant(X), -1., 1., axis=0)
  assert_bitwise_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("axis", [None, 0, 1, -1, -2])
def test_python_axis_mapping_matches_tf(axis):
  ours = tf_qdq.quantize_and_dequantize_v2(tf.constant(X), -1., 1., axis=axis)
  theirs = tf.quantization.quantize_and_dequantize_v2(tf.constant(X), -1., 1.,
                                                      axis=axis)
  assert_bitwise_equal(ours.numpy(), theirs.numpy())


def test_python_axis_below_minus_rank_matches_tf():
  ours = tf_qdq.quantize_and_dequantize_v2(tf.constant(X), 0., 1., axis=-3)
  theirs = tf.quantization.quantize_and_dequantize_v2(tf.constant(X), 0., 1.,
                                                      axis=-3)
  assert_bitwise_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("fn", PY_QDQ, ids=["v2", "legacy"])
def test_python_per_channel_given_range(fn):
  mn = np.array([-1., -2., -3.], F)
  mx = np.array([1., 2., 3.], F)
  got = fn(tf.constant(X), mn, mx, range_given=True, axis=-1)
  want = tf.raw_ops.QuantizeAndDequantizeV3(input=X, input_min=mn, input_max=mx,
                                            num_bits=8, range_given=True, axis=1)
  assert_bitwise_equal(got.numpy(), want.numpy())
  # the kernel's errors come through the Python layer unchanged
  check_error(lambda: fn(tf.constant(X), F(0.), mx, range_given=True, axis=1),
              "Shape must be rank 1 for input_min_tensor when the axis is "
              "specified")
  check_error(lambda: fn(tf.constant(X), mn, mx, range_given=True, axis=5),
              "Shape must be at least rank 6 but is rank 2")


def test_python_list_input_takes_the_float64_ranges_dtype():
  """As TF's eager quantize_and_dequantize_v2 (issue 13): on every path."""
  lo, hi = tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64)
  fn = lambda: tf_qdq.quantize_and_dequantize_v2(  # noqa: E731
      [0.1, 0.5, 0.77], lo, hi, range_given=True)
  expected = tf.quantization.quantize_and_dequantize_v2(
      [0.1, 0.5, 0.77], lo, hi, range_given=True)
  for f in (fn, tf.function(fn), tf.function(fn, jit_compile=True)):
    got = f()
    assert got.dtype == tf.float64
    assert_bitwise_equal(got.numpy(), expected.numpy())


def test_denormal_data_maximum_zero_signs_are_documented():
  """docs/semantics.md D13: a denormal counts as the zero of its sign."""
  x = tf.constant([-1e-310, 1e-310, -0.0], tf.float64)
  got = tf_qdq.quantize_and_dequantize_v4(x, 0.0, 0.0, signed_input=False)
  np.testing.assert_array_equal(np.signbit(got.numpy()), [True, False, True])
  theirs = tf.raw_ops.QuantizeAndDequantizeV4(input=x, input_min=0.0,
                                              input_max=0.0,
                                              signed_input=False)
  np.testing.assert_array_equal(np.signbit(theirs.numpy()), [False, True, False])
