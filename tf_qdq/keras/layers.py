"""The ops as Keras layers: `FakeQuant` and `QuantizeDequantize`.

* `FakeQuant` is FakeQuantWithMinMaxVars (PerChannel with `per_channel=True`)
  with min/max as layer weights. With `trainable_range=True` the optimizer
  moves them with the op's min/max backprops (the sums of the gradients that
  fall below/above the nudged range): a range only grows to cut clipping.
* `QuantizeDequantize` is QuantizeAndDequantizeV4 (symmetric, no zero point).
  Its range is the batch's ("dynamic"), an exponential moving average of the
  batch min/max ("moving_average": updated only when training, and used as the
  given range, as tfmot's MovingAverageQuantizer does), or fixed.

The symmetric_qdq scheme builds on them (tf_qdq.keras.symmetric_qdq). Mixed
precision and XLA are described in tf_qdq.keras, distribution of the
moving-average ranges in tf_qdq.keras.ranges. FakeQuant's trainable min/max
are ordinary trainable variables: under a strategy their gradients are
all-reduced with every other gradient. A "dynamic" QuantizeDequantize takes
its range from each replica's own shard, as a BatchNormalization without
synchronization does.
"""
import keras
import tensorflow as tf

from tf_qdq import quantization as _q
from tf_qdq.keras.common import PACKAGE
from tf_qdq.keras.common import check_initial_range
from tf_qdq.keras.common import check_momentum
from tf_qdq.keras.common import check_num_bits
from tf_qdq.keras.ranges import batch_range
from tf_qdq.keras.ranges import update_moving_average

__all__ = ["FakeQuant", "QuantizeDequantize"]


def _normalize_axis(axis, rank, layer_name):
  if rank is None:
    raise ValueError(f"{layer_name}: a per-channel range needs inputs of "
                     "known rank.")
  if not -rank <= axis < rank:
    raise ValueError(f"{layer_name}: axis {axis} is out of range for inputs "
                     f"of rank {rank}.")
  return axis % rank


def _channels(input_shape, axis, layer_name):
  channels = input_shape[axis]
  if channels is None:
    raise ValueError(f"{layer_name}: the size of the channel axis {axis} must "
                     f"be known, got input shape {tuple(input_shape)}.")
  return int(channels)


def _reduce_axes(rank, axis):
  """Every axis but the channel axis (None: every axis)."""
  return None if axis is None else [i for i in range(rank) if i != axis]


def _to_last(x, axis):
  """x with `axis` moved last, and the permutation that undoes it."""
  rank = len(x.shape)
  if axis == rank - 1:
    return x, None
  perm = [i for i in range(rank) if i != axis] + [axis]
  inverse = [perm.index(i) for i in range(rank)]
  return tf.transpose(x, perm), inverse


@keras.saving.register_keras_serializable(package=PACKAGE)
class FakeQuant(keras.layers.Layer):
  """Fake quantization with a range held in layer weights.

  FakeQuantWithMinMaxVars (or ...PerChannel along `axis` with
  `per_channel=True`): the output is `x` clamped to the nudged [min, max] and
  rounded to one of 2^num_bits levels (2^num_bits - 1 with narrow_range).

  Args:
    num_bits: 2..16.
    narrow_range: use levels 1..2^num_bits - 1.
    per_channel: one range per slice along `axis`.
    axis: the channel axis when per_channel (default: the last).
    init_min, init_max: the initial range (the weights "min" and "max").
    trainable_range: let the optimizer learn the range from the op's min/max
      backprops; otherwise the range stays at its initial value.
  """

  def __init__(self, num_bits=8, narrow_range=False, per_channel=False,
               axis=-1, init_min=-6.0, init_max=6.0, trainable_range=True,
               **kwargs):
    super().__init__(**kwargs)
    self.num_bits = check_num_bits("FakeQuant", num_bits)
    check_initial_range("FakeQuant", init_min, init_max)
    self.narrow_range = bool(narrow_range)
    self.per_channel = bool(per_channel)
    self.axis = int(axis)
    self.init_min = float(init_min)
    self.init_max = float(init_max)
    self.trainable_range = bool(trainable_range)
    self.supports_masking = True

  def build(self, input_shape):
    shape = ()
    if self.per_channel:
      self._channel_axis = _normalize_axis(self.axis, len(input_shape),
                                           self.name)
      shape = (_channels(input_shape, self._channel_axis, self.name),)
    self.min = self.add_weight(
        name="min", shape=shape, trainable=self.trainable_range,
        initializer=keras.initializers.Constant(self.init_min))
    self.max = self.add_weight(
        name="max", shape=shape, trainable=self.trainable_range,
        initializer=keras.initializers.Constant(self.init_max))

  def call(self, inputs):
    # Read in the compute dtype (Keras autocasts the float32 weights): the op
    # then takes the activations as they come, half and bfloat16 included.
    mn, mx = self.min.value, self.max.value
    if not self.per_channel:
      return _q.fake_quant_with_min_max_vars(
          inputs, mn, mx, num_bits=self.num_bits,
          narrow_range=self.narrow_range)
    x, undo = _to_last(inputs, self._channel_axis)
    y = _q.fake_quant_with_min_max_vars_per_channel(
        x, mn, mx, num_bits=self.num_bits, narrow_range=self.narrow_range)
    return y if undo is None else tf.transpose(y, undo)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(),
            "num_bits": self.num_bits, "narrow_range": self.narrow_range,
            "per_channel": self.per_channel, "axis": self.axis,
            "init_min": self.init_min, "init_max": self.init_max,
            "trainable_range": self.trainable_range}


_RANGE_MODES = ("dynamic", "moving_average", "fixed")


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantizeDequantize(keras.layers.Layer):
  """Symmetric quantize-dequantize (QuantizeAndDequantizeV4).

  Args:
    num_bits: bits of the integer grid.
    signed: grid [-2^(b-1), 2^(b-1) - 1] (or from -2^(b-1) + 1 with
      narrow_range); unsigned: [0, 2^b - 1].
    narrow_range: see `signed`.
    round_mode: "HALF_TO_EVEN" or "HALF_UP".
    axis: None for one range per tensor, else the channel axis.
    range_mode:
      "dynamic": the range of each batch (no weights; the gradient is the
        identity);
      "moving_average": min/max weights that track an exponential moving
        average of the batch min/max in training (`ema = momentum * ema +
        (1 - momentum) * batch`) and are the given range both in training
        (after the update) and in inference; elements outside the range get no
        gradient. Without init_min/init_max the first training batch sets the
        range (until then inference uses each batch's range);
      "fixed": init_min/init_max, non-trainable.
    momentum: of the moving average.
    init_min, init_max: initial (moving_average) or fixed range.
  """

  def __init__(self, num_bits=8, signed=True, narrow_range=False,
               round_mode="HALF_TO_EVEN", axis=None,
               range_mode="moving_average", momentum=0.99, init_min=None,
               init_max=None, **kwargs):
    super().__init__(**kwargs)
    if range_mode not in _RANGE_MODES:
      raise ValueError(f"QuantizeDequantize: range_mode must be one of "
                       f"{_RANGE_MODES}, got {range_mode!r}.")
    if round_mode not in ("HALF_TO_EVEN", "HALF_UP"):
      raise ValueError("QuantizeDequantize: round_mode must be HALF_TO_EVEN or "
                       f"HALF_UP, got {round_mode!r}.")
    check_num_bits("QuantizeDequantize", num_bits, low=1,
                   high=61 if signed else 62,
                   hint=" (QuantizeAndDequantizeV4's bounds, signed or not)")
    if (init_min is None) != (init_max is None):
      raise ValueError("QuantizeDequantize: give both init_min and init_max, "
                       "or neither.")
    if range_mode == "fixed" and init_min is None:
      raise ValueError("QuantizeDequantize: range_mode='fixed' needs init_min "
                       "and init_max.")
    if init_min is not None:
      check_initial_range("QuantizeDequantize", init_min, init_max)
    self.momentum = check_momentum("QuantizeDequantize", momentum)
    self.num_bits = int(num_bits)
    self.signed = bool(signed)
    self.narrow_range = bool(narrow_range)
    self.round_mode = round_mode
    self.axis = None if axis is None else int(axis)
    self.range_mode = range_mode
    self.init_min = None if init_min is None else float(init_min)
    self.init_max = None if init_max is None else float(init_max)
    self.supports_masking = True

  def build(self, input_shape):
    self._rank = len(input_shape)
    self._channel_axis = None
    shape = ()
    if self.axis is not None:
      self._channel_axis = _normalize_axis(self.axis, self._rank, self.name)
      shape = (_channels(input_shape, self._channel_axis, self.name),)
    self._range_shape = shape
    if self.range_mode == "dynamic":
      return
    initialized = self.init_min is not None
    # float32 (the variable dtype), read without autocast and cast to the
    # compute dtype by call(); mirrored under a strategy, where every replica
    # assigns the same value.
    self.min = self.add_weight(
        name="min", shape=shape, trainable=False, autocast=False,
        aggregation="only_first_replica",
        initializer=keras.initializers.Constant(self.init_min or 0.0))
    self.max = self.add_weight(
        name="max", shape=shape, trainable=False, autocast=False,
        aggregation="only_first_replica",
        initializer=keras.initializers.Constant(self.init_max or 0.0))
    if self.range_mode == "moving_average":
      self.initialized = self.add_weight(
          name="initialized", shape=(), dtype="float32", trainable=False,
          autocast=False, aggregation="only_first_replica",
          initializer=keras.initializers.Constant(float(initialized)))

  def _qdq(self, x, mn, mx, range_given):
    op_axis = -1 if self._channel_axis is None else self._channel_axis
    return _q.quantize_and_dequantize_v4(
        x, mn, mx, signed_input=self.signed, num_bits=self.num_bits,
        range_given=range_given, round_mode=self.round_mode,
        narrow_range=self.narrow_range, axis=op_axis)

  def call(self, inputs, training=None):
    x = inputs
    if self.range_mode == "dynamic":
      zeros = tf.zeros(self._range_shape, x.dtype)  # ignored by the op
      return self._qdq(x, zeros, zeros, range_given=False)
    dtype = x.dtype
    if self.range_mode == "fixed":
      return self._qdq(x, tf.cast(self.min.value, dtype),
                       tf.cast(self.max.value, dtype), range_given=True)
    batch_min, batch_max = batch_range(
        x, _reduce_axes(self._rank, self._channel_axis))
    if training:
      mn, mx = self._update_moving_average(batch_min, batch_max)
      mn, mx = tf.cast(mn, dtype), tf.cast(mx, dtype)
    else:
      initialized = self.initialized.value > 0
      mn = tf.where(initialized, tf.cast(self.min.value, dtype), batch_min)
      mx = tf.where(initialized, tf.cast(self.max.value, dtype), batch_max)
    # A batch without a number (all NaN, or empty) has no range: +inf > -inf.
    valid = mn <= mx
    zero = tf.zeros_like(mn)
    return self._qdq(x, tf.where(valid, mn, zero), tf.where(valid, mx, zero),
                     range_given=True)

  def _update_moving_average(self, batch_min, batch_max):
    """Updates min/max with the batch range; returns the new values."""
    return update_moving_average(self, batch_min, batch_max)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(),
            "num_bits": self.num_bits, "signed": self.signed,
            "narrow_range": self.narrow_range, "round_mode": self.round_mode,
            "axis": self.axis, "range_mode": self.range_mode,
            "momentum": self.momentum, "init_min": self.init_min,
            "init_max": self.init_max}
