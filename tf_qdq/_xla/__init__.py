"""The tf-qdq ops as compositions of TensorFlow built-in ops, for XLA.

The op library has no XLA kernels, so inside an XLA context (tf.function with
jit_compile=True, Keras' jit_compile, which Keras 3 turns on by default when a
GPU is present) every public function of tf_qdq.quantization builds the
composition below instead of the custom op. It reproduces the CPU kernels' bits
(cc/core/quantize_math.h is the ground truth, cited below as "math.h"):

* 16-bit types are computed in float32 and rounded once on store;
* left-preferring clamps are selects (`tf.where(b < a, b, a)`), never
  tf.minimum/tf.maximum, whose NaN and -0.0 behaviour differs;
* HALF_TO_EVEN is tf.math.round (XLA RoundNearestEven, = rint); HALF_UP and
  FakeQuant round with floor(y + 0.5); the FakeQuant zero point rounds half
  away from zero (std::round), written exactly with floor;
* Vars divides by the scale, Args and PerChannel multiply by its inverse;
* a range computed from the data skips NaNs, and a zero maximum (its sign
  decides the sign of zero outputs) is +0 when the data hold a +0;
* the FakeQuant min/max backprops are double sums in the kernels' canonical
  order (cc/core/layout.h), written as explicit adds, so they are bit-exact
  too, and rounded once to the storage type (round-to-odd for 16-bit types).

Four XLA rewrites would change the bits and are blocked:

* XLA:CPU lets LLVM contract a multiply followed by an add into an FMA (one
  rounding instead of two): on this machine 1.1% of `x * s + 0.5` differ.
  LLVM contracts only a multiply with a single use on x86, so every product
  that feeds an add gets a second use (`separately_rounded`).
* The algebraic simplifier rewrites `A / constant` as `A * (1 / constant)`,
  `A / (B / C)` as `(A * C) / B` (which moves the FakeQuant zero point of
  [-1, 1] from 127.49999 to 127.5), reassociates `(A + C1) + C2` as
  `A + (C1 + C2)`, and folds constant ranges. The range inputs, the quotients
  that are divided again, every per-range quantity and every constant divisor
  go through an XlaOptimizationBarrier, which XLA cannot see through
  (`opaque`); XLA removes the barriers after simplification, so they cost
  nothing at run time.
* It rewrites `g * convert(mask)` as `select(mask, g, 0)`, which loses the
  -0 of a negative gradient and the NaN of an infinite one outside the mask:
  masks are opaque too. And it folds `0 + A` into `A`, which turns a +0 sum of
  -0 terms into -0: the kernels' sums start from +0.0 and are never -0, so
  zero sums are set to +0.

What does not carry over: checks that depend on tensor values (QDQ's
"Invalid range: input_min > input_max") cannot raise inside XLA and are
skipped; checks of attributes and static shapes raise at trace time with the
kernels' messages. Verified on XLA:CPU (x86-64 with AVX2 and FMA); XLA:GPU
is unverified (NVPTX contracts multiplies with several uses too).

This package detects the XLA context and names the entry points, one per op,
with the op wrappers' arguments. The lowering, one file each:

* tf_qdq/_xla/common.py: compute types, `opaque`, `separately_rounded`;
* tf_qdq/_xla/checks.py: the checks of inputs and attrs (kernels' messages);
* tf_qdq/_xla/sums.py: the canonical double sums (order from tf_qdq._core);
* tf_qdq/_xla/qdq.py: QuantizeAndDequantize V2, V4 and V4Grad;
* tf_qdq/_xla/fake_quant.py: the FakeQuant ops and their gradients.
"""
import warnings

import tensorflow as tf

from tf_qdq._tf_internal import control_flow_util
# The entry points (tf_qdq.quantization, tf_qdq._keras_int8, the tests).
from tf_qdq._xla.fake_quant import fake_quant_with_min_max_args  # noqa: F401
from tf_qdq._xla.fake_quant import fake_quant_with_min_max_args_gradient  # noqa: F401
from tf_qdq._xla.fake_quant import fake_quant_with_min_max_vars  # noqa: F401
from tf_qdq._xla.fake_quant import fake_quant_with_min_max_vars_gradient  # noqa: F401
from tf_qdq._xla.fake_quant import fake_quant_with_min_max_vars_per_channel  # noqa: F401
from tf_qdq._xla.fake_quant import (  # noqa: F401
    fake_quant_with_min_max_vars_per_channel_gradient)
from tf_qdq._xla.qdq import quantize_and_dequantize_v2  # noqa: F401
from tf_qdq._xla.qdq import quantize_and_dequantize_v4  # noqa: F401
from tf_qdq._xla.qdq import quantize_and_dequantize_v4_grad  # noqa: F401


def in_xla_context():
  """True while building a graph that XLA will compile (tf.function with
  jit_compile=True, Keras jit_compile, or a function nested in one)."""
  if tf.executing_eagerly():
    return False
  inside = control_flow_util.GraphOrParentsInXlaContext(
      tf.compat.v1.get_default_graph())
  if inside:
    _warn_once_if_gpu()
  return inside


_GPU_WARNED = []


def _warn_once_if_gpu():
  """The compositions are verified bit-exact on XLA:CPU only: NVPTX may
  contract a multiply and an add into an FMA, which changes the last bit.
  Where a GPU is visible the cluster may well be compiled for it: say so,
  once per process, until XLA:GPU has been checked."""
  if _GPU_WARNED or not tf.config.list_logical_devices("GPU"):
    return
  _GPU_WARNED.append(True)
  warnings.warn(
      "tf_qdq: building the XLA lowering of tf_qdq ops with a GPU visible. "
      "Its bits are verified on XLA:CPU only; XLA:GPU may contract "
      "multiplies and adds into FMAs and change last bits. For bit-exact "
      "results on GPU, compile without XLA (jit_compile=False) so that the "
      "tf_qdq CUDA kernels run.", RuntimeWarning,
      # The public function's caller: past this function, in_xla_context,
      # tf_qdq.quantization._xla_or_op and the public function.
      stacklevel=5)
