"""Range statistics of the quantizers: batch ranges, their combination across
replicas, and the exponential moving average both ActivationQuantizer and
QuantizeDequantize learn their range with.

Distribution (tf.distribute.MirroredStrategy and friends): the moving-average
variables (and their "initialized" flag) are ON_WRITE (mirrored) with
aggregation ONLY_FIRST_REPLICA. Before the update, the batch min/max of all
replicas are combined (an all-gather, then min/max), so every replica computes
the same update from the global batch and the variables evolve exactly as on
one device with the same global batch. MEAN aggregation of per-replica
statistics would instead average the per-shard extremes, a narrower range than
the global batch's, and ON_READ variables would let replicas quantize with
different ranges.
"""
import tensorflow as tf


def batch_range(x, axes=None):
  """min/max over `axes` of the finite values: NaN and +-inf are skipped, so
  one bad batch cannot make a moving-average range infinite for good (a range
  update takes the finite values only; the op still maps NaN to NaN and
  clamps +-inf to the range). +inf/-inf where there is no finite value."""
  inf = tf.constant(float("inf"), x.dtype)
  finite = tf.math.is_finite(x)
  return (tf.reduce_min(tf.where(finite, x, inf), axis=axes),
          tf.reduce_max(tf.where(finite, x, -inf), axis=axes))


def finite_range(x, non_negative=False):
  """batch_range(x) over every axis, in plain reductions when they are
  finite, as they are but for a bad batch; the masked reductions run only
  then. `non_negative`: x >= 0 wherever it is a number, so min is taken as 0,
  which is what holding 0 in the range makes of the true minimum anyway."""
  mx = tf.reduce_max(x)
  if non_negative:
    return tf.zeros_like(mx), tf.cond(tf.math.is_finite(mx), lambda: mx,
                                      lambda: batch_range(x)[1])
  mn = tf.reduce_min(x)
  finite = tf.logical_and(tf.math.is_finite(mn), tf.math.is_finite(mx))
  return tf.cond(finite, lambda: (mn, mx), lambda: batch_range(x))


def cross_replica_range(mn, mx):
  """The min/max over every replica's batch: identical on all replicas."""
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return mn, mx
  both = ctx.all_gather(tf.stack([mn, -mx])[tf.newaxis], axis=0)
  both = tf.reduce_min(both, axis=0)
  return both[0], -both[1]


def moving_average_update(old_min, old_max, initialized, batch_min, batch_max,
                          momentum, hold_zero=False):
  """The range after one batch: `ema = momentum * ema + (1 - momentum) *
  batch` once initialized, the batch range for the first batch, and the old
  range for a batch without a finite value (batch_min > batch_max, as
  batch_range gives it) or for such a channel. `hold_zero`: the batch range
  is widened to hold 0 first (TFLite needs 0 exactly representable).
  Returns (new_min, new_max, new_initialized) in the dtypes of old_min and
  initialized.

  Written as cc/core/moving_average.h computes it (the fused training op),
  with the batch's weight w = has_data * (1 - momentum * initialized):
  new = old * (1 - w) + batch * w."""
  dtype = old_min.dtype
  flag_dtype = initialized.dtype
  initialized = tf.cast(initialized, dtype)
  batch_min = tf.cast(batch_min, dtype)
  batch_max = tf.cast(batch_max, dtype)
  has_data = tf.cast(batch_min <= batch_max, dtype)
  if hold_zero:  # finite even without data: [0, 0]
    batch_min = tf.minimum(batch_min, 0.0)
    batch_max = tf.maximum(batch_max, 0.0)
  else:  # +-inf * 0 would be NaN: a channel without data keeps its range
    batch_min = tf.where(has_data > 0, batch_min, old_min)
    batch_max = tf.where(has_data > 0, batch_max, old_max)
  weight = has_data * (1.0 - momentum * initialized)
  keep = 1.0 - weight
  new_min = old_min * keep + batch_min * weight
  new_max = old_max * keep + batch_max * weight
  initialized = tf.maximum(initialized, tf.reduce_max(has_data))
  return new_min, new_max, tf.cast(initialized, flag_dtype)


def update_moving_average(quantizer, batch_min, batch_max, hold_zero=False):
  """One training step of a quantizer's moving-average range: the batch
  range over every replica, then moving_average_update of the quantizer's
  `min`, `max` and `initialized` variables with its `momentum`. Returns the
  new min and max."""
  batch_min, batch_max = cross_replica_range(batch_min, batch_max)
  new_min, new_max, initialized = moving_average_update(
      quantizer.min.value, quantizer.max.value, quantizer.initialized.value,
      batch_min, batch_max, quantizer.momentum, hold_zero=hold_zero)
  quantizer.min.assign(new_min)
  quantizer.max.assign(new_max)
  quantizer.initialized.assign(initialized)
  return new_min, new_max
