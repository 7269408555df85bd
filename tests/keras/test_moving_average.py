"""TfQdq>FakeQuantWithMovingAverage, the fused training step of
tf_qdq.keras' ActivationQuantizer: the same bits as the TF-op composition
that runs where it cannot (XLA, GPUs, several replicas), for the outputs, the
moving-average state, the quantization grid and the input gradient."""
import numpy as np
import pytest
import tensorflow as tf
import keras

import tf_qdq.keras as qk
from tf_qdq.keras.int8 import activations as int8_activations
from tf_qdq._library import ops as _ops
from _parity_util import ALL_DTYPES, assert_same_bits, dtype_name
from _qat_models import mobilenet_v2_style

# (quantizer options, the activation it applies): the combinations
# tf_qdq.keras builds (a ReLU/ReLU6 quantizer is non_negative), and others.
OPTIONS = [({}, "linear"), ({"symmetric": True}, "linear"),
           ({"non_negative": True}, "linear"), ({"momentum": 0.9}, "linear"),
           ({"num_bits": 4, "momentum": 0.0}, "linear"), ({"momentum": 1.0}, "linear"),
           ({"non_negative": True}, "relu6"), ({"non_negative": True}, "relu"),
           ({"non_negative": True, "symmetric": True}, "relu6"), ({}, "relu6"),
           ({}, "relu")]


@pytest.fixture
def fused_update(monkeypatch):
  """Sets whether the quantizers built from now on use the fused op."""
  def use(fused):
    monkeypatch.setattr(int8_activations, "FUSED_RANGE_UPDATE", fused)
  return use


def _batches(dtype):
  rng = np.random.default_rng(0)
  normal = [rng.uniform(-3, 5, (4, 17)) for _ in range(3)]
  relu6 = np.clip(rng.normal(size=(2, 33)) * 4, 0, 6)
  relu6[0, :5] = [0.0, -0.0, np.nan, 6.0, 0.0]
  special = [
      np.array([[np.nan, np.inf, 1.0, -2.0]]),   # a bad batch: finite part only
      np.full((3,), np.nan),                     # nothing finite: range stays
      np.array([np.inf, -np.inf]),
      np.zeros((0, 5)),                          # empty
      np.array([-0.0, 0.0, -0.0]),               # a zero range
      np.array([1e-40, -1e-41, 2.0]),            # denormals
      np.full((70000,), 0.25),                   # several min/max blocks
  ]
  return [np.asarray(b).astype(dtype) for b in
          normal[:1] + special[:2] + normal[1:2] + special[2:] + [relu6]
          + normal[2:]]


def _train_steps(dtype, options, activation, batches):
  """Each batch through one quantizer in training, with its input gradient:
  every output the step produces, per batch."""
  quantizer = qk.ActivationQuantizer(dtype=dtype, **options)
  steps = []
  for batch in batches:
    x = tf.constant(batch)
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = quantizer(x, training=True, activation=activation)
    # A gradient of 3 also shows that it is scaled, not just masked.
    grad = tape.gradient(y, x, output_gradients=tf.fill(tf.shape(y), tf.cast(3, y.dtype)))
    steps.append({"outputs": y, "input gradient": grad,
                  "min": quantizer.min.value, "max": quantizer.max.value,
                  "initialized": quantizer.initialized.value})
  return steps


@pytest.mark.parametrize("options,activation", OPTIONS, ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_name)
def test_fused_step_has_the_bits_of_the_composition(dtype, options, activation,
                                                    fused_update):
  batches = _batches(dtype)
  fused_update(True)
  fused = _train_steps(dtype, options, activation, batches)
  fused_update(False)
  composed = _train_steps(dtype, options, activation, batches)
  for i, (got, want) in enumerate(zip(fused, composed)):
    for key in want:
      assert_same_bits(got[key], want[key], f"batch {i}: {key}")
  # The sequence did learn: initialized after the first batch, and the bad
  # batches left a finite range.
  assert fused[0]["initialized"].numpy() == 1.0
  assert np.isfinite(fused[-1]["min"].numpy()) and np.isfinite(fused[-1]["max"].numpy())


def _op_types(concrete):
  types = {op.type for op in concrete.graph.get_operations()}
  for fn in concrete.graph._functions.values():  # pylint: disable=protected-access
    types |= {node.op for node in fn.definition.node_def}
  return types


def test_a_training_graph_runs_the_fused_op_and_trains_like_the_composition(fused_update):
  x = np.random.default_rng(1).normal(size=(8, 16, 16, 3)).astype(np.float32)
  y = np.random.default_rng(2).integers(0, 10, size=8)
  results = []
  for fused in (True, False):
    fused_update(fused)
    keras.utils.set_random_seed(0)
    qat = qk.quantize_model(mobilenet_v2_style(), verbose=False)
    qat.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    for _ in range(3):
      qat.train_on_batch(x, y)
    step = tf.function(lambda v: qat(v, training=True))
    types = _op_types(step.get_concrete_function(tf.TensorSpec(x.shape, tf.float32)))
    assert ("TfQdq>FakeQuantWithMovingAverage" in types) == fused
    results.append(([w.numpy() for w in qat.weights], qat(x, training=False)))
  (weights, out), (weights_ref, out_ref) = results
  for got, want in zip(weights, weights_ref):
    assert_same_bits(got, want)
  assert_same_bits(out, out_ref)


def test_xla_builds_the_composition(fused_update):
  fused_update(True)
  quantizer = qk.ActivationQuantizer()
  x = tf.constant(np.linspace(-2, 3, 40, dtype=np.float32))
  step = tf.function(lambda v: quantizer(v, training=True), jit_compile=True)
  out = step(x)
  assert "TfQdq>FakeQuantWithMovingAverage" not in _op_types(
      step.get_concrete_function(x))
  assert quantizer.range() == (-2.0, 3.0)
  reference = qk.ActivationQuantizer()
  assert_same_bits(out, reference(x, training=True))


def _raw(x, **attrs):
  return _ops.tf_qdq_fake_quant_with_moving_average(
      inputs=x, min=tf.constant(-1.0), max=tf.constant(1.0),
      initialized=tf.constant(0.0), **attrs)


def test_bad_attrs_and_states_raise_named_errors():
  x = tf.constant([0.5, -0.5])
  with pytest.raises(ValueError, match="ActivationQuantizer: activation must be one of"):
    qk.ActivationQuantizer()(x, training=True, activation="gelu")
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"momentum must be in \[0, 1\], got 1.5"):
    _raw(x, momentum=1.5)
  with pytest.raises(tf.errors.InvalidArgumentError, match="num_bits must be between 2 and 16"):
    _raw(x, num_bits=1)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match="`initialized` must be rank 0 but is rank 1"):
    _ops.tf_qdq_fake_quant_with_moving_average(
        inputs=x, min=tf.constant(-1.0), max=tf.constant(1.0), initialized=tf.constant([0.0]))
  with pytest.raises(ValueError, match="must be rank 0"):  # the shape function, in a graph
    tf.function(lambda: _ops.tf_qdq_fake_quant_with_moving_average(
        inputs=x, min=tf.constant([-1.0]), max=tf.constant(1.0),
        initialized=tf.constant(0.0))).get_concrete_function()


def test_first_batch_replaces_the_initial_range_and_outputs_the_grid():
  y, new_min, new_max, initialized, grid_min, grid_max = _raw(
      tf.constant([-0.5, 0.25, 2.0]), momentum=0.99)
  assert (new_min.numpy(), new_max.numpy(), initialized.numpy()) == (-0.5, 2.0, 1.0)
  assert (grid_min.numpy(), grid_max.numpy()) == (-0.5, 2.0)
  assert_same_bits(y, tf.quantization.fake_quant_with_min_max_vars(
      tf.constant([-0.5, 0.25, 2.0]), -0.5, 2.0))
