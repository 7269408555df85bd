"""The XLA lowering's checks of inputs and attrs, with the kernels' messages.

Checks of attributes and static shapes raise at trace time. XLA drops
tf.debugging assertions, so a shape check that needs the actual shapes is a
shape op that fails when XLA compiles the function for them, and the kernel's
message travels in the failing node's name. Checks that depend on tensor
values cannot raise inside XLA and are not made.
"""
import re

import tensorflow as tf

from tf_qdq._xla_common import FLOATS


def invalid(message):
  return tf.errors.InvalidArgumentError(None, None, message)


def convert_inputs(op_name, *values):
  """Converts like the public wrappers: the first input keeps its own dtype,
  which is the op's T; other inputs that are not tensors take T."""
  first = tf.convert_to_tensor(values[0])
  out = [first] + [
      tf.convert_to_tensor(v) if tf.is_tensor(v) or isinstance(v, tf.Variable)
      else tf.convert_to_tensor(v, dtype=first.dtype) for v in values[1:]]
  for t in out:
    if t.dtype != out[0].dtype:
      raise TypeError(f"{op_name}: inputs must all have the same type, got "
                      f"{out[0].dtype.name} and {t.dtype.name}.")
  if out[0].dtype not in FLOATS:
    raise TypeError(f"{op_name}: type {out[0].dtype.name} is not one of "
                    "bfloat16, half, float32, float64.")
  return out


def rank_of(t):
  return t.shape.rank


_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def _check_name(message):
  """An op name that carries `message`: XLA drops tf.debugging assertions,
  so the run-time checks below are shape ops that fail when XLA compiles the
  function for the actual shapes, and the kernel's message travels in the
  failing node's name ("[[{{node ...}}]]" in the error)."""
  return _NAME_UNSAFE.sub("_", message).strip("_.-")[:150] or "check"


def checked_rank(t, rank, message):
  """t, whose rank must be `rank`: checked now when known, else when XLA
  compiles (EnsureShape). `message(actual_rank)` is the kernel's message."""
  if rank_of(t) is not None:
    if rank_of(t) != rank:
      raise invalid(message(rank_of(t)))
    return t
  name = _check_name(message("N"))
  return tf.ensure_shape(tf.identity(t, name=name), [None] * rank, name=name)


def checked_size(t, x, axis, message, rank_message):
  """t (rank 1), whose size must be dim `axis` of x: checked now when both
  are known, else when XLA compiles (a reshape to that dim; reading the dim
  fails first when x has no such axis, `rank_message`)."""
  depth = x.shape[axis] if rank_of(x) is not None else None
  size = t.shape[0] if rank_of(t) == 1 else None
  if depth is not None and size is not None:
    if size != depth:
      raise invalid(message(size, depth))
    return t
  with tf.name_scope(_check_name(rank_message)):
    depth = tf.shape(x)[axis]
  return tf.reshape(t, [depth], name=_check_name(message("N", "D")))


def checked_same_shape(g, x, message):
  """(g, x), whose shapes must be equal: checked now when both are known,
  else when XLA compiles (each broadcast to the other's shape, which passes
  only for equal shapes)."""
  if g.shape.is_fully_defined() and x.shape.is_fully_defined():
    if g.shape != x.shape:
      raise invalid(message)
    return g, x
  name = _check_name(message)
  return (tf.broadcast_to(g, tf.shape(x), name=name),
          tf.broadcast_to(x, tf.shape(g), name=name))


def check_int32(value, name):
  """The kernels read int attrs as int32 (TF's GetAttr message)."""
  if not -(1 << 31) <= value < (1 << 31):
    raise invalid(f"Attr {name} has value {value} out of range for an int32")
