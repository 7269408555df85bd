"""The FakeQuant min/max backprop sums for XLA, in the kernels' canonical
order (cc/core/layout.h), written as explicit float64 adds so that they are
bit-exact, then rounded once to the storage type ("math.h" is
cc/core/quantize_math.h).
"""
import tensorflow as tf

from tf_qdq import _core

# cc/core/layout.h's constants, read from the core module so they cannot drift.
_FLAT_CHUNK = _core.SUM_FLAT_CHUNK
_FLAT_LANES = _core.SUM_FLAT_LANES
_ROW_CHUNK = _core.SUM_ROW_CHUNK
_COMBINE_LANES = _core.SUM_COMBINE_LANES


def store_double(value, dtype):
  """A float64 sum -> storage type with one rounding (math.h StoreDoubleAs):
  16-bit types go through float32 rounded to odd."""
  if dtype == tf.float64:
    return value
  f = tf.cast(value, tf.float32)
  if dtype == tf.float32:
    return f
  u = tf.bitcast(f, tf.int32)
  inexact = (tf.cast(f, tf.float64) != value) & ~tf.math.is_nan(value)
  stepped_back = tf.abs(tf.cast(f, tf.float64)) > tf.abs(value)
  odd = tf.bitwise.bitwise_or(tf.where(stepped_back, u - 1, u), 1)
  return tf.cast(tf.bitcast(tf.where(inexact, odd, u), tf.float32), dtype)


def _positive_zero_if_zero(s):
  """The kernels' sums start from +0.0 and so are never -0."""
  return tf.where(tf.equal(s, 0), tf.zeros_like(s), s)


def _sequential_sum(parts):
  """((parts[0] + parts[1]) + parts[2]) + ...: tf2xla lowers AddN to exactly
  this chain of adds, in input order (the kernels start from 0.0 + parts[0]:
  only the sign of a zero can differ, and the callers fix that)."""
  return parts[0] if len(parts) == 1 else tf.add_n(parts)


def _tree_fold_lanes(lanes):
  """TreeFoldLanes over the last axis: lanes[j] += lanes[j + s], s = L/2..1."""
  width = lanes.shape[-1]
  while width > 1:
    width //= 2
    low, high = tf.split(lanes, 2, axis=-1)
    lanes = low + high
  return tf.squeeze(lanes, -1)


def _sequential_rows(table, count, axis):
  """The sum of the `count` slices of `table` along `axis`, in order from +0:
  a loop, so that no copy of the table is unstacked or padded."""
  shape = tf.shape(table)
  acc = tf.zeros(tf.concat([shape[:axis], shape[axis + 1:]], 0), table.dtype)
  _, acc = tf.while_loop(
      lambda r, acc: r < count,
      lambda r, acc: (r + 1, acc + tf.gather(table, r, axis=axis)),
      (tf.constant(0, count.dtype), acc))
  return acc


def _combine_partials(partials):
  """CombinePartials over axis 1 of `partials` [p, chunks, ...].

  The lanes that no partial reaches hold +0 and change no bit of a sum (the
  callers turn a -0 sum into +0), so, as the CPU kernel, only
  min(chunks, 256) lanes are stored: memory stays proportional to the
  partials, not to 256 of them per channel."""
  shape = tf.shape(partials)
  chunks = shape[1]
  width = tf.maximum(tf.minimum(chunks, _COMBINE_LANES), 1)
  rows = (chunks + width - 1) // width
  padding = [[0, 0], [0, rows * width - chunks]] + [[0, 0]] * (
      partials.shape.rank - 2)
  table = tf.reshape(tf.pad(partials, padding),
                     tf.concat([shape[:1], [rows, width], shape[2:]], 0))
  # Lane l adds partials l, l + width, ... in order: a loop over the rows
  # (width == 256 whenever there is more than one row).
  lanes = _sequential_rows(table, rows, 1)  # [p, width, ...]
  # TreeFoldLanes over 256 lanes, of which the first `width` are stored:
  # lanes[j] += lanes[j + s] for j < s, where j + s < width.
  index = tf.range(width)
  mask_shape = [1, -1] + [1] * (partials.shape.rank - 2)
  stride = _COMBINE_LANES // 2
  while stride >= 1:
    reached = tf.reshape(index + stride < width, mask_shape)
    partner = tf.gather(lanes, tf.minimum(index + stride, width - 1), axis=1)
    lanes = tf.where(reached, lanes + partner, lanes)
    stride //= 2
  return tf.gather(lanes, 0, axis=1)


def flat_sums(terms):
  """The per-tensor canonical sums of float64 vectors [p, n] -> [p]."""
  n = tf.shape(terms)[1]
  chunks = (n + _FLAT_CHUNK - 1) // _FLAT_CHUNK
  table = tf.reshape(
      tf.pad(terms, [[0, 0], [0, chunks * _FLAT_CHUNK - n]]),
      [terms.shape[0], chunks, _FLAT_CHUNK // _FLAT_LANES, _FLAT_LANES])
  # Lane j of a chunk adds its elements j, j + 64, ... in order.
  lanes = _sequential_sum(tf.unstack(table, axis=2))
  return _positive_zero_if_zero(_combine_partials(_tree_fold_lanes(lanes)))


def column_sums(terms):
  """The per-channel canonical sums of float64 matrices [p, rows, depth] ->
  [p, depth]. Chunks of 256 rows; with fewer rows, one chunk of all of them,
  unpadded (padding would cost 256 rows per channel)."""
  shape = tf.shape(terms)
  rows = shape[1]
  chunk = tf.maximum(tf.minimum(rows, _ROW_CHUNK), 1)
  chunks = (rows + chunk - 1) // chunk
  table = tf.reshape(
      tf.pad(terms, [[0, 0], [0, chunks * chunk - rows], [0, 0]]),
      tf.stack([shape[0], chunks, chunk, shape[2]]))
  # Each channel adds the rows of a chunk in order: a loop over the chunk's
  # rows, all chunks at once.
  partials = _sequential_rows(table, chunk, 2)
  return _positive_zero_if_zero(_combine_partials(partials))
