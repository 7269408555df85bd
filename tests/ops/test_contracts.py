"""One contract per op, enforced alike on every path.

Each op's checks are stated once, in cc/core/contract. The TF kernels
(test_validation.py checks them against TF's built-ins), the NumPy core module
(tf_qdq.core) and the XLA lowering (jit_compile, checked when traced) must
therefore fail every bad input with the same message. This test runs each
error case of _cases.py (which test_validation.py checks against TF) on the two other paths.
"""
import numpy as np
import pytest
import tensorflow as tf

import tf_qdq
from tf_qdq import _core
from tf_qdq import core

import _cases as cases

F = np.float32
X = cases.X

# Per op: the defaults test_validation's helpers fill in, the public function
# (which lowers under XLA) and the core module's function.
OPS = {
    "v4": (dict(input=X, input_min=F(0.), input_max=F(1.)),
           tf_qdq.quantize_and_dequantize_v4, core.quantize_and_dequantize_v4),
    "v4g": (dict(gradients=X, input=X, input_min=F(0.), input_max=F(1.)),
            tf_qdq.quantize_and_dequantize_v4_grad,
            core.quantize_and_dequantize_v4_grad),
    "vars": (dict(inputs=X, min=F(0.), max=F(1.)),
             tf_qdq.fake_quant_with_min_max_vars, core.fake_quant_with_min_max_vars),
    "vars_grad": (dict(gradients=X, inputs=X, min=F(0.), max=F(1.)),
                  tf_qdq.fake_quant_with_min_max_vars_gradient,
                  core.fake_quant_with_min_max_vars_gradient),
    "args": (dict(inputs=X), tf_qdq.fake_quant_with_min_max_args,
             core.fake_quant_with_min_max_args),
    "args_grad": (dict(gradients=X, inputs=X),
                  tf_qdq.fake_quant_with_min_max_args_gradient,
                  core.fake_quant_with_min_max_args_gradient),
    "pc": (dict(inputs=X, min=np.zeros([3], F), max=np.ones([3], F)),
           tf_qdq.fake_quant_with_min_max_vars_per_channel,
           core.fake_quant_with_min_max_vars_per_channel),
    "pc_grad": (dict(inputs=X, min=np.zeros([3], F), max=np.ones([3], F)),
                tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient,
                core.fake_quant_with_min_max_vars_per_channel_gradient),
}

CASES = [(op, kw, msg) for op, cases in (
    ("v4", cases.V4_ERRORS), ("v4g", cases.V4_GRAD_ERRORS), ("vars", cases.VARS_ERRORS),
    ("vars_grad", cases.VARS_GRAD_ERRORS), ("args", cases.ARGS_ERRORS),
    ("args_grad", cases.ARGS_ERRORS), ("pc", cases.PER_CHANNEL_ERRORS),
    ("pc_grad", cases.PER_CHANNEL_ERRORS)) for kw, msg in cases
         # int32 attr limits are the op registration's, not the contract's
         if not msg.startswith("Attr ")]


def _kwargs(op, kw):
  out = dict(OPS[op][0])
  out.update(kw)
  if op == "pc_grad":  # as test_validation: the gradients take the inputs' shape
    out.setdefault("gradients", out["inputs"])
  return out


@pytest.mark.parametrize("op, kw, expected", CASES,
                         ids=[f"{c[0]}-{c[2][:40]}" for c in CASES])
def test_core_module_raises_the_kernels_message(op, kw, expected):
  with pytest.raises(ValueError) as info:
    OPS[op][2](**_kwargs(op, kw))
  assert str(info.value) == expected


@pytest.mark.parametrize("op, kw, expected", CASES,
                         ids=[f"{c[0]}-{c[2][:40]}" for c in CASES])
def test_xla_lowering_raises_the_kernels_message_when_traced(op, kw, expected):
  kwargs = {k: tf.constant(v) if isinstance(v, (np.ndarray, np.generic)) else v
            for k, v in _kwargs(op, kw).items()}
  fn = tf.function(lambda: OPS[op][1](**kwargs), jit_compile=True)
  if expected.startswith("Invalid range"):
    # A check of tensor values cannot raise inside XLA: the lowering computes
    # instead (docs/semantics.md D15).
    assert fn().shape == kwargs["input"].shape
    return
  with pytest.raises(tf.errors.InvalidArgumentError) as info:
    fn()
  # tf.function prefixes the traceback ("in user code: ...") and the error's
  # type name; the message ends the last line.
  last = info.value.message.strip().splitlines()[-1].strip()
  assert last == f"InvalidArgumentError: {expected}"


def test_contracts_defer_what_trace_time_shapes_cannot_decide():
  # Per-channel FakeQuant with an unknown input rank: the rank-1 check of the
  # input and the size checks wait for XLA's compile; min's rank 2 fails now.
  error, deferred = _core.check_fake_quant(
      "FakeQuantWithMinMaxVarsPerChannel", False, [None, [3], [3]], 8)
  assert error is None
  kinds = [d[0] for d in deferred]
  assert kinds == [_core.DEFERRED_AXIS_IN_RANK, _core.DEFERRED_SIZE,
                   _core.DEFERRED_SIZE]
  assert deferred[1][4] == "min has incorrect size, expected D was N"
  error, deferred = _core.check_fake_quant(
      "FakeQuantWithMinMaxVarsPerChannel", False, [None, [3, 1], [3]], 8)
  assert error == "`min` must be rank 1 but is rank 2"
  # A known mismatch after an undecided check still fails at trace time.
  error, deferred = _core.check_quantize_and_dequantize_v4_grad(
      [[None, 3], [2, 3], [], []], -1)
  assert error is None and [d[0] for d in deferred] == [_core.DEFERRED_SAME_SHAPE]
  error, _ = _core.check_quantize_and_dequantize_v4_grad(
      [[None, 3], [2, 3], [1], []], -1)
  assert error == "input_min must be a scalar if axis is unspecified"
