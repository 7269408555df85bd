"""The private TensorFlow modules that tf_qdq's Python layer relies on, in one
place (tested against TF 2.21, the version the op library is built for).

Each import says what is used from it and why no public API does the job. A
TF upgrade that moves one of them breaks here, at `import tf_qdq`.
"""
# pylint: disable=unused-import

# GraphOrParentsInXlaContext (tf_qdq._xla.in_xla_context): whether the graph
# being built, or one it is nested in, will be compiled by XLA. No public API
# tells a function that its caller's tf.function has jit_compile=True.
from tensorflow.python.ops import control_flow_util

# xla_optimization_barrier (tf_qdq._xla.common.opaque): XlaOptimizationBarrier,
# which hides values from XLA's algebraic simplifier. tf2xla's ops are not in
# tf.raw_ops; this generated wrapper is the only way to build one.
from tensorflow.compiler.tf2xla.ops import gen_xla_ops

# TFE_Py_FastPathExecute (tf_qdq.quantization's public functions): runs an op
# eagerly
# without the generated wrapper's Python layer, which costs as much as a small
# op. tf.raw_ops and the generated wrappers both go through that layer.
from tensorflow.python import pywrap_tfe

# context._context and its _thread_local_data.is_eager (the fast path): the
# eager context that TFE_Py_FastPathExecute takes, and whether it is eager,
# read without tf.executing_eagerly()'s extra calls on every op.
from tensorflow.python.eager import context

# make_int, make_bool, make_float, make_str (tf_qdq.quantization's attr
# normalisation): TF's own attr conversions, with the types and error messages
# of the generated wrappers. No public API converts an attr as they do.
from tensorflow.python.eager import execute

# EagerTensor: the concrete class of eager tensors, which the fast path tests
# for with `type(x) is EagerTensor`. tf.Tensor is its public base, shared by
# symbolic tensors, so an isinstance test on it cannot tell them apart. Its
# `_datatype_enum()` (the FakeQuant fast paths' float32 test) is the dtype
# without `.dtype`'s DType object: a third of the cost.
from tensorflow.python.framework.ops import EagerTensor

# op_def_registry.get (tf_qdq.saved_model_rewrite's 16-bit rewrite): the OpDef
# of a registered op, whose output_arg names the rewrite casts back to 16 bits.
# No public API returns a registered op's OpDef.
from tensorflow.python.framework import op_def_registry

# convert_variables_to_constants_v2 (tf_qdq.keras.export.litert): freezes a
# concrete function's variables into constants. TFLiteConverter keeps the
# variables a float island reads as READ_VARIABLE ops, which XNNPACK computes
# wrongly and the reference kernels reject; the public converter API has no
# switch that freezes them all.
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2)
