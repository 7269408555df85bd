"""The XLA lowering's checks of inputs and attrs: each op's contract, stated
once in cc/core/contract and evaluated through tf_qdq._core, with the
kernels' messages.

Checks of attributes and static shapes raise at trace time. XLA drops
tf.debugging assertions, so a shape check that needs the actual shapes is a
shape op that fails when XLA compiles the function for them, and the kernel's
message travels in the failing node's name. Checks that depend on tensor
values cannot raise inside XLA and are not made.
"""
import re

import tensorflow as tf

from tf_qdq import _core

from tf_qdq._xla.common import FLOATS


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


def shape_of(t):
  """A shape as the contracts (tf_qdq._core.check_*) take it: None for an
  unknown rank, else a list of dims with None where unknown."""
  return None if t.shape.rank is None else t.shape.as_list()


_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def _check_name(message):
  """An op name that carries `message`: XLA drops tf.debugging assertions,
  so the run-time checks below are shape ops that fail when XLA compiles the
  function for the actual shapes, and the kernel's message travels in the
  failing node's name ("[[{{node ...}}]]" in the error)."""
  return _NAME_UNSAFE.sub("_", message).strip("_.-")[:150] or "check"


def enforce(contract_result, *tensors):
  """Enforces an op's contract, as tf_qdq._core.check_* evaluated it on the
  shapes known at trace time: raises the first check those shapes fail, and
  returns `tensors` (the op's inputs, in order) with the checks they cannot
  decide attached as shape ops that fail when XLA compiles."""
  error, deferred = contract_result
  if error is not None:
    raise invalid(error)
  tensors = list(tensors)
  for kind, operand, other, value, message in deferred:
    t = tensors[operand]
    name = _check_name(message)
    if kind == _core.DEFERRED_RANK:  # EnsureShape of rank `value`
      t = tf.ensure_shape(tf.identity(t, name=name), [None] * value, name=name)
    elif kind == _core.DEFERRED_AXIS_IN_RANK:  # reading dim `value` fails
      with tf.name_scope(name):
        shape = tf.shape(t)
        dim = shape[value]
      t = tf.reshape(t, tf.concat([shape[:value], [dim], shape[value + 1:]], 0),
                     name=name)
    elif kind == _core.DEFERRED_SIZE:  # a reshape to dim `value` of `other`
      with tf.name_scope(name):
        depth = tf.shape(tensors[other])[value]
      t = tf.reshape(t, [depth], name=name)
    elif kind == _core.DEFERRED_SAME_SHAPE:  # each broadcast to the other
      u = tensors[other]
      t, tensors[other] = (tf.broadcast_to(t, tf.shape(u), name=name),
                           tf.broadcast_to(u, tf.shape(t), name=name))
    else:  # pragma: no cover - the contracts define no other kind
      raise AssertionError(f"unknown deferred check {kind}")
    tensors[operand] = t
  return tensors


def check_int32(value, name):
  """The kernels read int attrs as int32 (TF's GetAttr message)."""
  if not -(1 << 31) <= value < (1 << 31):
    raise invalid(f"Attr {name} has value {value} out of range for an int32")
