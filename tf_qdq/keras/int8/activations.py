"""The int8 scheme's activation quantizer (tf_qdq.keras.int8 describes the
scheme).

`ActivationQuantizer` is FakeQuantWithMinMaxVars (8 bits, full range) on a
range learned as an exponential moving average of the batch min/max, widened
to hold 0; ops whose int8 kernels have a fixed output range (softmax,
logistic, tanh) get that range (`output_quantizer_for`). In export mode
(tf_qdq.keras.export_mode) it traces as TF's built-in op with a constant
range.
"""
import keras
import tensorflow as tf

from tf_qdq import _xla
from tf_qdq import quantization as _q
from tf_qdq._library import ops as _ops
from tf_qdq.keras.common import PACKAGE
from tf_qdq.keras.common import check_initial_range
from tf_qdq.keras.common import check_momentum
from tf_qdq.keras.common import check_num_bits
from tf_qdq.keras.export_mode import builtin_fake_quant
from tf_qdq.keras.export_mode import export_state
from tf_qdq.keras.ranges import finite_range
from tf_qdq.keras.ranges import update_moving_average

# Ops whose int8 kernels have a fixed output quantization in TFLite's spec:
# softmax and logistic scale 1/256, zero point -128 ([0, 255/256]); tanh
# scale 1/128, zero point 0 ([-1, 127/128]).
FIXED_OUTPUT_RANGES = {
    "softmax": (0.0, 255.0 / 256.0),
    "sigmoid": (0.0, 255.0 / 256.0),
    "tanh": (-1.0, 127.0 / 128.0),
}


# ---- activations -------------------------------------------------------------

_RANGE_MODES = ("moving_average", "fixed")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ActivationQuantizer(keras.layers.Layer):
  """An int8 activation quantizer: FakeQuantWithMinMaxVars on a per-tensor,
  asymmetric range, which TFLite's converter turns into the tensor's scale and
  zero point.

  Args:
    num_bits: 8 for TFLite (2..16 for simulation).
    range_mode: "moving_average": the range follows an exponential moving
      average of the batch min/max in training (`ema = momentum * ema +
      (1 - momentum) * batch`; the first training batch sets it) and is
      constant in inference; "fixed": init_min/init_max.
    momentum: of the moving average.
    init_min, init_max: the range before the first training batch, or the
      fixed range.
    symmetric: quantize on [-a, a * 127/128], a = max(-min, max): zero point
      0 in int8 (128 in uint8), scale a/128, as TensorRT wants. The learned
      min/max are kept as they are; only the grid is made symmetric.
    non_negative: the input is never negative (it follows a ReLU/ReLU6), so
      the widened batch minimum is 0 and only the maximum is reduced: the
      same range for one pass over the batch less.

  In training the batch range takes the finite values only (NaN and +-inf are
  skipped, so one bad batch cannot poison the range) and is widened to hold 0;
  the batch is then quantized with the updated range, and no gradient flows
  into the range. In inference the range is the variables' value: no batch
  statistic is ever used.
  """

  def __init__(self, num_bits=8, range_mode="moving_average", momentum=0.99,
               init_min=-6.0, init_max=6.0, symmetric=False,
               non_negative=False, **kwargs):
    super().__init__(**kwargs)
    if range_mode not in _RANGE_MODES:
      raise ValueError(f"ActivationQuantizer: range_mode must be one of "
                       f"{_RANGE_MODES}, got {range_mode!r}.")
    self.num_bits = check_num_bits("ActivationQuantizer", num_bits)
    self.momentum = check_momentum("ActivationQuantizer", momentum)
    check_initial_range("ActivationQuantizer", init_min, init_max)
    self.range_mode = range_mode
    self.init_min = float(init_min)
    self.init_max = float(init_max)
    self.symmetric = bool(symmetric)
    self.non_negative = bool(non_negative)
    self.supports_masking = True

  def build(self, input_shape):
    del input_shape
    # float32 whatever the dtype policy (float64 too): the ranges the ops
    # read are float32 values cast to the compute dtype.
    weight = dict(shape=(), dtype="float32", trainable=False, autocast=False,
                  aggregation="only_first_replica")
    self.min = self.add_weight(
        name="min", initializer=keras.initializers.Constant(self.init_min),
        **weight)
    self.max = self.add_weight(
        name="max", initializer=keras.initializers.Constant(self.init_max),
        **weight)
    if self.range_mode == "moving_average":
      self.initialized = self.add_weight(
          name="initialized", initializer=keras.initializers.Constant(0.0),
          **weight)

  @property
  def is_calibrated(self):
    """False for a moving-average quantizer that has seen no training batch
    (it still quantizes with init_min/init_max)."""
    if self.range_mode == "fixed":
      return True
    with tf.init_scope():
      return bool(self.initialized.numpy() > 0)

  def _grid(self, mn, mx):
    """The range the op quantizes on (float32 tensors)."""
    if not self.symmetric:
      return mn, mx
    a = tf.maximum(-mn, mx)
    return -a, a * (127.0 / 128.0)

  def range(self):
    """The inference range the op quantizes on, as Python floats."""
    with tf.init_scope():  # also while a tf.function is traced
      mn, mx = self._grid(tf.convert_to_tensor(self.min),
                          tf.convert_to_tensor(self.max))
      return float(mn.numpy()), float(mx.numpy())

  def call(self, inputs, training=None, activation="linear",
           update_range=True, ties_away_from_zero=False):
    """`activation`: "relu" or "relu6" is applied to `inputs` first (the
    activation an int8 op fuses before its output quantizer).
    `update_range=False`: quantize on the current range without learning
    from `inputs`: the second call of a quantizer whose grid another tensor
    shares (the output of an int8 average pooling, on its input's grid).
    `ties_away_from_zero`: a value halfway between two grid points rounds
    away from the int8 value 0, as TFLite's int8 average pooling and
    resizing kernels round (FakeQuant rounds halves up)."""
    check_activation(activation, "ActivationQuantizer")
    state = export_state()
    exporting = state is not None
    learns = (training and update_range and
              self.range_mode == "moving_average")
    if learns and not exporting and _fused_update_runs():
      return self._fused_update_and_quantize(inputs, activation)
    inputs = apply_activation(inputs, activation)
    dtype = inputs.dtype
    if exporting:
      mn, mx = (tf.constant(v, tf.float32) for v in self.range())
      # An int8 runtime rounds in its own kernel; TF (the stock
      # SavedModel) runs this simulation of it.
      ties_away_from_zero = ties_away_from_zero and state.simulates_kernels
    elif learns:
      mn, mx = self._grid(*self._update_moving_average(inputs))
    else:
      mn, mx = self._grid(self.min.value, self.max.value)
    if ties_away_from_zero:
      inputs = inputs + tf.stop_gradient(tf.cast(
          _tie_shift(tf.cast(inputs, tf.float32), mn, mx, self.num_bits),
          dtype))
    if exporting:
      return builtin_fake_quant(inputs, *self.range(), num_bits=self.num_bits)
    mn = tf.stop_gradient(tf.cast(mn, dtype))
    mx = tf.stop_gradient(tf.cast(mx, dtype))
    return _q.fake_quant_with_min_max_vars(inputs, mn, mx,
                                           num_bits=self.num_bits)

  def _fused_update_and_quantize(self, x, activation):
    """The training step in one op (TfQdq>FakeQuantWithMovingAverage, its
    maths in cc/core/moving_average.h): the same bits as the activation,
    _update_moving_average and the quantizer, in one kernel instead of ~25
    ops."""
    y, new_min, new_max, initialized, _, _ = (
        _ops.tf_qdq_fake_quant_with_moving_average(
            inputs=x, min=self.min.value, max=self.max.value,
            initialized=self.initialized.value, num_bits=self.num_bits,
            activation=activation, momentum=self.momentum,
            non_negative=self.non_negative, symmetric=self.symmetric))
    self.min.assign(new_min)
    self.max.assign(new_max)
    self.initialized.assign(initialized)
    return y

  def _update_moving_average(self, x):
    # The composition of cc/core/moving_average.h in TF ops, step for step.
    batch_min, batch_max = finite_range(x, self.non_negative)
    return update_moving_average(self, batch_min, batch_max, hold_zero=True)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), "num_bits": self.num_bits,
            "range_mode": self.range_mode, "momentum": self.momentum,
            "init_min": self.init_min, "init_max": self.init_max,
            "symmetric": self.symmetric, "non_negative": self.non_negative}


def _tie_shift(x, mn, mx, num_bits):
  """A shift of 1/1000 of a step away from the signed integer 0 of the grid
  FakeQuantWithMinMaxVars puts [mn, mx] on (its nudged zero point, less
  2^(b-1)): FakeQuant then rounds the halves that TFLite's int8 kernels
  round away from zero (`acc > 0 ? (acc + n/2) / n : (acc - n/2) / n` over
  the window's int8 values) the same way. Values that are not halves stay:
  an average of n values is j/n from a grid point, at least 1/(2n) from a
  half, and 1/1000 is below that for windows of up to 500 values; a
  tolerance, as the average in float is not exactly a half."""
  levels = 2.0 ** num_bits - 1.0
  scale = (mx - mn) / levels
  zero_point = tf.clip_by_value(tf.floor(-mn / scale + 0.5), 0.0, levels)
  signed = x / scale + (zero_point - 2.0 ** (num_bits - 1))
  return tf.sign(signed) * (1e-3 * scale)


# The activations an int8 op can fuse before its output quantizer
# (tf_qdq.keras.int8.layers), which the quantizer can apply itself.
FUSED_ACTIVATIONS = ("linear", "relu", "relu6")


def check_activation(activation, owner):
  """ValueError naming `owner` (the layer) unless `activation` is one of
  FUSED_ACTIVATIONS."""
  if activation not in FUSED_ACTIVATIONS:
    raise ValueError(f"{owner}: activation must be one of "
                     f"{FUSED_ACTIVATIONS}, got {activation!r}.")


def apply_activation(y, activation):
  """`activation` (one of FUSED_ACTIVATIONS) as TF ops."""
  if activation == "relu":
    return tf.nn.relu(y)
  if activation == "relu6":
    return tf.nn.relu6(y)
  return y


# Tests set this to False to compare the fused op with the composition.
FUSED_RANGE_UPDATE = True


def _fused_update_runs():
  """Whether a moving-average training step runs as the fused op, which has
  a CPU kernel only and no XLA lowering and cannot all-reduce the batch range
  across replicas: not under XLA, not with several replicas, not on a
  machine with a GPU. The composition (the same bits) runs there."""
  if not FUSED_RANGE_UPDATE or _xla.in_xla_context():
    return False
  replica = tf.distribute.get_replica_context()
  if replica is not None and replica.num_replicas_in_sync > 1:
    return False
  return not tf.config.list_logical_devices("GPU")


def output_quantizer_for(activation, num_bits=8, name=None, dtype=None,
                         symmetric=False):
  """The ActivationQuantizer for the output of `activation` (a name): the
  fixed range of TFLite's int8 kernel where it has one, else a moving
  average (which, after "relu"/"relu6", knows its input is never
  negative)."""
  fixed = FIXED_OUTPUT_RANGES.get(activation)
  if fixed is not None:
    return ActivationQuantizer(num_bits=num_bits, range_mode="fixed",
                               init_min=fixed[0], init_max=fixed[1], name=name,
                               dtype=dtype, symmetric=symmetric)
  return ActivationQuantizer(num_bits=num_bits, name=name, dtype=dtype,
                             symmetric=symmetric,
                             non_negative=activation in ("relu", "relu6"))


