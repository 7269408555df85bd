"""Shared pieces of the XLA lowering (tf_qdq._xla): compute types, constants
and the guards that keep XLA from changing the kernels' bits.

* 16-bit types are computed in float32 (`to_compute`) and rounded once on
  store (`store`); bfloat16 denormals are flushed as the kernels flush them;
* left-preferring clamps are selects, never tf.minimum/tf.maximum, whose NaN
  and -0.0 behaviour differs;
* `opaque` hides values from XLA's algebraic simplifier and constant folder,
  `separately_rounded` keeps a product from being contracted into an FMA
  (tf_qdq/_xla.py says which rewrites they block).
"""
import numpy as np
import tensorflow as tf

from tf_qdq._tf_internal import gen_xla_ops

SIXTEEN_BIT = (tf.float16, tf.bfloat16)
FLOATS = (tf.float16, tf.bfloat16, tf.float32, tf.float64)


# Plain graph building: AutoGraph has nothing to convert here.
no_autograph = tf.autograph.experimental.do_not_convert


def compute_dtype(dtype):
  return tf.float32 if dtype in SIXTEEN_BIT else dtype


def to_compute(t):
  """t in its compute type. bfloat16 denormals become float32 denormals,
  which the kernels flush (DAZ: a zero of the same sign) and XLA does not:
  they are flushed here."""
  c = compute_dtype(t.dtype)
  v = t if t.dtype == c else tf.cast(t, c)
  if t.dtype != tf.bfloat16:
    return v
  tiny = const(np.finfo(np.float32).tiny, c)
  signed_zero = tf.where(signbit(v), const(-0.0, c), const(0.0, c))
  return tf.where(tf.abs(v) < tiny, signed_zero, v)


def const(value, dtype):
  """A constant of `dtype`, converted like C++ static_cast (int64 -> float
  rounds once)."""
  return tf.constant(np.asarray(value).astype(dtype.as_numpy_dtype), dtype)


def opaque(*tensors):
  """The tensors, hidden from XLA's algebraic simplifier and constant folder.
  The barrier has no gradient: only quantities whose gradient is zero (masks,
  ranges that feed comparisons) or that custom gradients cover go through."""
  out = gen_xla_ops.xla_optimization_barrier(
      [tf.stop_gradient(t) for t in tensors])
  return tuple(out) if len(tensors) > 1 else out[0]


def separately_rounded(product, consumer):
  """consumer(product), with no FMA contraction of the product into it. The
  select gives the multiply a second use; a NaN product gives NaN either way."""
  return tf.where(tf.math.is_nan(product), product, consumer(product))


def min_prefer_left(a, b):
  return tf.where(b < a, b, a)


def max_prefer_left(a, b):
  return tf.where(a < b, b, a)


def signbit(x):
  int_type = tf.int64 if x.dtype == tf.float64 else tf.int32
  return tf.bitcast(x, int_type) < 0


def store(value, dtype):
  """Compute type -> storage type: the one rounding step."""
  return value if value.dtype == dtype else tf.cast(value, dtype)
