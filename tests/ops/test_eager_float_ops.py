"""The float-only twins of the FakeQuant ops (TfQdq>...Float, cc/tf/ops.cc),
which the public functions' eager fast path runs for float32 inputs because
TF's eager runtime charges each call for the public ops' type attr T.

* they are what an eager float32 call runs (and only then), and give the bits
  of the public op, forward and gradients, per tensor and per channel;
* a GradientTape through them gives the gradients of the graph path;
* a call they cannot take (another dtype among min/max, say) returns or
  raises exactly what the public op's generated wrapper does;
* graphs (tf.function, SavedModel) hold only the public ops.
"""
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import kernels
from tensorflow.python.framework import op_def_registry
from tensorflow.python.framework import ops as tf_ops

from _cases import OP_NAMES
import tf_qdq
from tf_qdq import quantization

FAKE_QUANT_OPS = [n for n in OP_NAMES if n.startswith("FakeQuant")]
PUBLIC_OPS = {"TfQdq>" + n for n in FAKE_QUANT_OPS}
FLOAT_OPS = {"TfQdq>" + n + "Float" for n in FAKE_QUANT_OPS}

RNG = np.random.default_rng(7)
SHAPE = [16, 64]
# Values on both sides of the ranges below, exact grid points and the edges.
X = np.concatenate([
    RNG.uniform(-2.5, 2.5, size=SHAPE[0] * SHAPE[1] - 8),
    [-1.0, 1.0, 0.0, -0.0, 2.0, -2.0, 0.5, -1.5]]).astype(np.float32)
X = X.reshape(SHAPE)
G = RNG.standard_normal(SHAPE).astype(np.float32)
MIN_C = RNG.uniform(-2.0, -0.1, size=[SHAPE[1]]).astype(np.float32)
MAX_C = RNG.uniform(0.1, 2.0, size=[SHAPE[1]]).astype(np.float32)
ATTRS = [dict(num_bits=8, narrow_range=False),
         dict(num_bits=4, narrow_range=True),
         dict(num_bits=16, narrow_range=False),
         dict(num_bits=2, narrow_range=True)]


def _bits(outputs):
  outputs = outputs if isinstance(outputs, (tuple, list)) else [outputs]
  return [(o.dtype, tuple(o.shape), o.numpy().tobytes()) for o in outputs]


def _raw(name):
  """The generated wrapper of TfQdq>name."""
  snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
  return getattr(tf_qdq.raw_ops, "tf_qdq" + snake)


# ---- registration ------------------------------------------------------------


@pytest.mark.parametrize("name", FAKE_QUANT_OPS)
def test_float_op_is_the_public_op_without_t(name):
  public = op_def_registry.get("TfQdq>" + name)
  float_only = op_def_registry.get("TfQdq>" + name + "Float")
  assert float_only is not None
  assert [a.name for a in float_only.attr] == [
      a.name for a in public.attr if a.name != "T"]
  for a, b in zip(float_only.attr, [a for a in public.attr if a.name != "T"]):
    assert a == b
  for args, public_args in [(float_only.input_arg, public.input_arg),
                            (float_only.output_arg, public.output_arg)]:
    assert [a.name for a in args] == [a.name for a in public_args]
    assert all(a.type == tf.float32.as_datatype_enum and not a.type_attr
               for a in args)
    assert all(a.type_attr == "T" for a in public_args)


@pytest.mark.parametrize("name", FAKE_QUANT_OPS)
def test_float_op_has_an_unconstrained_cpu_kernel_and_a_gradient(name):
  op = "TfQdq>" + name + "Float"
  cpu = [k for k in kernels.get_registered_kernels_for_op(op).kernel
         if k.device_type == "CPU"]
  assert len(cpu) == 1 and not cpu[0].constraint
  assert (tf_ops.gradient_registry.lookup(op) is
          tf_ops.gradient_registry.lookup("TfQdq>" + name))


# ---- which op an eager call runs ---------------------------------------------


def _calls(dtype):
  x, g = tf.constant(X, dtype), tf.constant(G, dtype)
  mn, mx = tf.constant(-1.0, dtype), tf.constant(1.0, dtype)
  mnc, mxc = tf.constant(MIN_C, dtype), tf.constant(MAX_C, dtype)
  q = tf_qdq
  return {
      "FakeQuantWithMinMaxArgs": lambda: q.fake_quant_with_min_max_args(
          x, -1.0, 1.0),
      "FakeQuantWithMinMaxArgsGradient":
          lambda: q.fake_quant_with_min_max_args_gradient(g, x, -1.0, 1.0),
      "FakeQuantWithMinMaxVars": lambda: q.fake_quant_with_min_max_vars(
          x, mn, mx),
      "FakeQuantWithMinMaxVarsGradient":
          lambda: q.fake_quant_with_min_max_vars_gradient(g, x, mn, mx),
      "FakeQuantWithMinMaxVarsPerChannel":
          lambda: q.fake_quant_with_min_max_vars_per_channel(x, mnc, mxc),
      "FakeQuantWithMinMaxVarsPerChannelGradient":
          lambda: q.fake_quant_with_min_max_vars_per_channel_gradient(
              g, x, mnc, mxc),
  }


@pytest.fixture
def fast_path_ops(monkeypatch):
  """The op names the fast path ran without raising."""
  ran = []
  fast_path = quantization._fast_path  # pylint: disable=protected-access

  def recording(ctx, op_name, *args):
    result = fast_path(ctx, op_name, *args)
    ran.append(op_name)
    return result

  monkeypatch.setattr(quantization, "_fast_path", recording)
  return ran


@pytest.mark.parametrize("name", FAKE_QUANT_OPS)
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64, tf.float16,
                                   tf.bfloat16])
def test_eager_call_runs_the_float_op_for_float32_only(name, dtype,
                                                       fast_path_ops):
  _calls(dtype)[name]()
  want = "TfQdq>" + name + ("Float" if dtype == tf.float32 else "")
  assert fast_path_ops == [want]


# ---- bits --------------------------------------------------------------------


def _op_pairs(attrs):
  """(public op call, float op call) on the same float32 inputs."""
  x, g = tf.constant(X), tf.constant(G)
  mn, mx = tf.constant(-1.0), tf.constant(1.5)
  mnc, mxc = tf.constant(MIN_C), tf.constant(MAX_C)
  args = dict(min=-1.0, max=1.5, **attrs)
  inputs = {
      "FakeQuantWithMinMaxArgs": dict(inputs=x, **args),
      "FakeQuantWithMinMaxArgsGradient": dict(gradients=g, inputs=x, **args),
      "FakeQuantWithMinMaxVars": dict(inputs=x, min=mn, max=mx, **attrs),
      "FakeQuantWithMinMaxVarsGradient": dict(gradients=g, inputs=x, min=mn,
                                              max=mx, **attrs),
      "FakeQuantWithMinMaxVarsPerChannel": dict(inputs=x, min=mnc, max=mxc,
                                                **attrs),
      "FakeQuantWithMinMaxVarsPerChannelGradient": dict(
          gradients=g, inputs=x, min=mnc, max=mxc, **attrs),
  }
  return {n: (lambda n=n: _raw(n)(**inputs[n]),
              lambda n=n: _raw(n + "Float")(**inputs[n]))
          for n in FAKE_QUANT_OPS}


@pytest.mark.parametrize("attrs", ATTRS, ids=str)
@pytest.mark.parametrize("name", FAKE_QUANT_OPS)
def test_float_op_gives_the_public_ops_bits(name, attrs):
  public, float_only = _op_pairs(attrs)[name]
  assert _bits(float_only()) == _bits(public())


@pytest.mark.parametrize("name", FAKE_QUANT_OPS)
def test_eager_call_gives_the_graph_calls_bits(name):
  call = _calls(tf.float32)[name]
  assert _bits(call()) == _bits(tf.function(call)())


def _loss_and_grads(kind, x, mn, mx):
  with tf.GradientTape(persistent=True) as outer:
    outer.watch(x)
    with tf.GradientTape() as tape:
      tape.watch(x)
      if kind == "args":
        y = tf_qdq.fake_quant_with_min_max_args(x, -1.0, 1.5, num_bits=5)
      elif kind == "vars":
        y = tf_qdq.fake_quant_with_min_max_vars(x, mn, mx, num_bits=5)
      else:
        y = tf_qdq.fake_quant_with_min_max_vars_per_channel(x, mn, mx,
                                                            num_bits=5)
      loss = tf.reduce_sum(y * tf.constant(G))
    sources = [x] if kind == "args" else [x, mn, mx]
    first = tape.gradient(loss, sources)
    # Second order goes through the gradient ops' gradients: dy/dx * x.
    inner = tf.reduce_sum(first[0] * x)
  second = outer.gradient(inner, sources,
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
  return [y] + first + second


@pytest.mark.parametrize("kind", ["args", "vars", "per_channel"])
def test_tape_gradients_through_the_float_ops_equal_the_graphs(kind,
                                                               fast_path_ops):
  per_channel = kind == "per_channel"
  x = tf.constant(X)  # an eager tensor takes the fast path; min/max variables
  mn = tf.Variable(MIN_C if per_channel else -1.0)
  mx = tf.Variable(MAX_C if per_channel else 1.5)
  eager = _loss_and_grads(kind, x, mn, mx)
  assert fast_path_ops and all(op in FLOAT_OPS for op in fast_path_ops)
  graph = tf.function(_loss_and_grads, autograph=False)(kind, x, mn, mx)
  assert _bits(eager) == _bits(graph)


def test_tape_gradients_of_the_gradient_ops_equal_the_graphs(fast_path_ops):
  g, x = tf.constant(G), tf.constant(X)
  mn, mx = tf.constant(-1.0), tf.constant(1.5)
  mnc, mxc = tf.constant(MIN_C), tf.constant(MAX_C)
  # A GradientTape around the gradient functions: their gradients w.r.t.
  # `gradients` (the gradient ops' own registered gradients).
  def grads():
    with tf.GradientTape() as tape:
      tape.watch(g)
      outs = [
          tf_qdq.fake_quant_with_min_max_args_gradient(g, x, -1.0, 1.5),
          *tf_qdq.fake_quant_with_min_max_vars_gradient(g, x, mn, mx),
          *tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(
              g, x, mnc, mxc),
      ]
      loss = sum(tf.reduce_sum(o * (i + 1.0)) for i, o in enumerate(outs))
    return outs + [tape.gradient(loss, g)]
  eager = grads()
  assert sorted(set(fast_path_ops)) == sorted(
      op for op in FLOAT_OPS if op.endswith("GradientFloat"))
  assert _bits(eager) == _bits(tf.function(grads)())


# ---- what the fast path cannot take ------------------------------------------


def _outcome(call):
  try:
    return ("returned", _bits(call()))
  except Exception as e:  # pylint: disable=broad-except
    return ("raised", type(e), str(e))


def _scalar_ranges():
  return {
      "python float": (-1.5, 1.5), "python int": (-2, 1),
      "float64 tensor": (tf.constant(-1.5, tf.float64),
                         tf.constant(1.5, tf.float64)),
      "half tensor": (tf.constant(-1.5, tf.float16),
                      tf.constant(1.5, tf.float16)),
      "float32 and float64": (tf.constant(-1.5), tf.constant(1.5, tf.float64)),
      "numpy float64": (np.float64(-1.5), np.float64(1.5)),
      "numpy float32": (np.float32(-1.5), np.float32(1.5)),
      "float32 variable": (tf.Variable(-1.5), tf.Variable(1.5)),
      "float64 variable": (tf.Variable(-1.5, dtype=tf.float64),
                           tf.Variable(1.5, dtype=tf.float64)),
      "vector": (tf.constant([-1.5]), tf.constant([1.5])),
      "string": ("a", "b"),
      "int32 tensor": (tf.constant(-1), tf.constant(1)),
  }


def _vector_ranges():
  mn, mx = MIN_C[:3].tolist(), MAX_C[:3].tolist()
  return {
      "list": (mn, mx),
      "float64 tensor": (tf.constant(mn, tf.float64),
                         tf.constant(mx, tf.float64)),
      "float32 and float64": (tf.constant(mn), tf.constant(mx, tf.float64)),
      "numpy float64": (np.array(mn), np.array(mx)),
      "float32 variable": (tf.Variable(mn), tf.Variable(mx)),
      "too short": (tf.constant(mn[:2]), tf.constant(mx[:2])),
      "scalar": (tf.constant(-1.5), tf.constant(1.5)),
  }


_X3 = X[:4, :3]
_G3 = G[:4, :3]
_SECOND_INPUTS = {
    "float32 tensor": lambda: tf.constant(_X3),
    "float64 tensor": lambda: tf.constant(_X3, tf.float64),
    "numpy float64": lambda: _X3.astype(np.float64),
    "numpy float32": lambda: _X3,
    "list": lambda: _X3.tolist(),
    "wrong shape": lambda: tf.constant(X),
}


@pytest.mark.parametrize("ranges", list(_scalar_ranges()))
def test_vars_with_other_ranges_does_what_the_public_op_does(ranges):
  x = tf.constant(_X3)
  mn, mx = _scalar_ranges()[ranges]
  assert (_outcome(lambda: tf_qdq.fake_quant_with_min_max_vars(x, mn, mx)) ==
          _outcome(lambda: _raw("FakeQuantWithMinMaxVars")(inputs=x, min=mn,
                                                           max=mx)))
  for second in _SECOND_INPUTS.values():
    g, inputs = tf.constant(_G3), second()
    assert (_outcome(lambda: tf_qdq.fake_quant_with_min_max_vars_gradient(
        g, inputs, mn, mx)) ==
            _outcome(lambda: _raw("FakeQuantWithMinMaxVarsGradient")(
                gradients=g, inputs=inputs, min=mn, max=mx)))


@pytest.mark.parametrize("ranges", list(_vector_ranges()))
def test_per_channel_with_other_ranges_does_what_the_public_op_does(ranges):
  x = tf.constant(_X3)
  mn, mx = _vector_ranges()[ranges]
  assert (_outcome(lambda: tf_qdq.fake_quant_with_min_max_vars_per_channel(
      x, mn, mx)) ==
          _outcome(lambda: _raw("FakeQuantWithMinMaxVarsPerChannel")(
              inputs=x, min=mn, max=mx)))
  for second in _SECOND_INPUTS.values():
    g, inputs = tf.constant(_G3), second()
    assert (_outcome(
        lambda: tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(
            g, inputs, mn, mx)) ==
            _outcome(lambda: _raw("FakeQuantWithMinMaxVarsPerChannelGradient")(
                gradients=g, inputs=inputs, min=mn, max=mx)))


@pytest.mark.parametrize("second", list(_SECOND_INPUTS))
def test_args_gradient_with_other_inputs_does_what_the_public_op_does(second):
  g, inputs = tf.constant(_G3), _SECOND_INPUTS[second]()
  assert (_outcome(lambda: tf_qdq.fake_quant_with_min_max_args_gradient(
      g, inputs, -1.5, 1.5)) ==
          _outcome(lambda: _raw("FakeQuantWithMinMaxArgsGradient")(
              gradients=g, inputs=inputs, min=-1.5, max=1.5)))


# ---- graphs ------------------------------------------------------------------


def test_traced_graphs_hold_only_the_public_ops():
  calls = _calls(tf.float32)

  def everything():
    x = tf.constant(X)
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = tf_qdq.fake_quant_with_min_max_vars(x, -1.0, 1.0)
    return [c() for c in calls.values()] + [tape.gradient(y, x)]

  graph = tf.function(everything).get_concrete_function().graph
  types = {op.type for op in graph.get_operations()}
  assert PUBLIC_OPS <= types
  assert not types & FLOAT_OPS


def test_an_eager_tensor_captured_while_tracing_builds_the_public_op():
  x = tf.constant(X)  # eager, captured by the trace below
  graph = tf.function(
      lambda: tf_qdq.fake_quant_with_min_max_args(x)).get_concrete_function(
          ).graph
  types = {op.type for op in graph.get_operations()}
  assert "TfQdq>FakeQuantWithMinMaxArgs" in types
  assert not types & FLOAT_OPS
