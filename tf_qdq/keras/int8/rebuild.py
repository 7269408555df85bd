"""quantize_model's "int8" scheme: rebuilds a functional graph so that it
computes what TFLite's int8 runtime computes (see tf_qdq.keras.int8.layers).

The rebuild walks the model's nodes in order and asks the layer-support table
(tf_qdq.keras.registry) what each layer is:
* WEIGHTED (Conv/Dense): absorbs the BatchNormalization and the ReLU/ReLU6
  that follow it (when each is the sole consumer and not a model output, and
  the entry fuses it) into one QuantizedLayer, whose output is quantized;
* REQUANTIZING (Add, Concatenate, average pooling, ...): the layer, then an
  ActivationQuantizer; an Add followed by its sole consumer ReLU/ReLU6 is
  left unquantized (TFLite fuses the ReLU into ADD), the ReLU quantizes;
* ACTIVATION: the layer, then an ActivationQuantizer (a fixed range for
  softmax, sigmoid and tanh, as TFLite's int8 kernels have);
* a tensor that only feeds a layer whose inputs take its scale (Concatenate)
  gets no quantizer of its own;
* KEEPS_SCALE (max pooling, reshapes, padding, dropout, ...): copied, keeping
  their input's quantization;
* BATCH_NORM on its own, UNSUPPORTED and unknown layers: copied and their
  output quantized, with a warning naming them: whether they run in int8 is
  the converter's decision, and export checks.
Model inputs get an ActivationQuantizer first (the int8 model's input
QUANTIZE). Nested functional/Sequential models are inlined.

`rebuild` returns the new graph's tensors and a report; tf_qdq.keras.model
makes the QuantizedModel of them.
"""
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tf_qdq.keras import kernels as _kernels
from tf_qdq.keras import registry
from tf_qdq.keras.int8.activations import FUSED_ACTIVATIONS
from tf_qdq.keras.int8.activations import output_quantizer_for
from tf_qdq.keras.int8.layers import QuantizedLayer


def functional_graph(op):
  """The functional graph of a nested Sequential/functional model (None for
  anything else, and for subclassed models)."""
  if not isinstance(op, keras.Model):
    return None
  graph = op._functional if isinstance(op, keras.Sequential) else op  # pylint: disable=protected-access
  return graph if hasattr(graph, "_nodes_by_depth") else None


def _copy(layer, **overrides):
  config = {**layer.get_config(), **overrides}
  return layer.__class__.from_config(config)


def _role(node):
  return registry.support_for(node.operation).role


@dataclasses.dataclass
class Report:
  """What the rebuild did, by the original model's layer names."""
  quantized: list = dataclasses.field(default_factory=list)
  folded: list = dataclasses.field(default_factory=list)
  warnings: list = dataclasses.field(default_factory=list)  # (name, why)


class _Rebuild:
  """One pass over a functional graph (and the graphs nested in it)."""

  def __init__(self, num_bits, per_channel, freeze_bn_delay, symmetric):
    self.symmetric = symmetric
    self.num_bits = num_bits
    self.per_channel = per_channel
    self.freeze_bn_delay = freeze_bn_delay
    self.weight_sources = []   # (new layer, callable that copies weights)
    self.report = Report()
    self.names = set()
    # id(new tensor) -> the graph-level ActivationQuantizer whose grid it is
    # on (its output, or a KEEPS_SCALE op's output of such a tensor): what a
    # SAME_SCALE op rounds onto.
    self.quantizer_of = {}

  def unique(self, name):
    candidate, i = name, 1
    while candidate in self.names:
      i += 1
      candidate = f"{name}_{i}"
    self.names.add(candidate)
    return candidate

  def quantize(self, x, activation=None, name="quant", dtype=None):
    """`x` through a new graph-level quantizer for `activation`'s output."""
    quantizer = output_quantizer_for(activation, name=self.unique(name),
                                     dtype=dtype, symmetric=self.symmetric)
    out = quantizer(x)
    self.quantizer_of[id(out)] = quantizer
    return out

  def activation_output(self, x, act, name, dtype):
    """`act` (a name) applied to the int8 tensor `x`, quantized the way
    TFLite's converter lowers it: one int8 op with its output quantizer,
    or, for the activations that become several ops, each op's output:
    swish/silu is LOGISTIC (on its fixed 1/256 grid) then MUL;
    hard_sigmoid is ADD(3) with a fused RELU6, then MUL(1/6)."""
    if act in ("swish", "silu"):
      gate = keras.layers.Activation(
          "sigmoid", name=self.unique(f"{name}_sigmoid"), dtype=dtype)(x)
      gate = self.quantize(gate, "sigmoid", name=f"{name}_sigmoid_quant",
                           dtype=dtype)
      y = keras.layers.Multiply(name=self.unique(f"{name}_multiply"),
                                dtype=dtype)([x, gate])
      return self.quantize(y, name=f"{name}_quant", dtype=dtype)
    if act == "hard_sigmoid":
      y = keras.ops.relu6(x + 3.0)
      y = self.quantize(y, "relu6", name=f"{name}_relu6_quant", dtype=dtype)
      return self.quantize(y * (1.0 / 6.0), name=f"{name}_quant",
                           dtype=dtype)
    y = keras.layers.Activation(act, name=self.unique(name), dtype=dtype)(x)
    return self.quantize(y, act, name=f"{name}_quant", dtype=dtype)

  def warn(self, name, why):
    self.report.warnings.append((name, why))

  def unchanged(self, layer):
    """The layer the new graph calls where the rebuild changes nothing: the
    layer itself when it has no weights (nothing to keep apart, and no
    config round trip that could fail); else a copy from its config with the
    weights copied, so that training the QAT model leaves the float model
    as it was. A layer whose config does not round-trip is reused too, and
    then shares its weights with the float model (a warning says so)."""
    if not getattr(layer, "weights", None):  # keras.ops nodes too
      self.names.add(layer.name)
      return layer
    try:
      copy = _copy(layer, name=self.unique(layer.name))
    except Exception as e:  # pylint: disable=broad-except
      # Keras wraps the cause; its last line names the rejected argument.
      cause = (str(e).strip().splitlines() or [""])[-1][:160]
      self.warn(layer.name, (
          f"{type(layer).__name__}.from_config(get_config()) fails "
          f"({type(e).__name__}: {cause}): the QAT model reuses this "
          "layer, so it shares its weights with the float model; fix the "
          "layer's get_config to get a separate copy"))
      self.names.add(layer.name)
      return layer
    self.weight_sources.append((copy, layer))
    return copy

  # -- the walk ----------------------------------------------------------------

  def run(self, graph, new_inputs, outer=None):
    """Maps `graph`'s outputs given new tensors for its inputs. `outer`: for
    a nested graph, the enclosing graph's sole consumer of each output."""
    tensors = {id(old): new for old, new in zip(graph.inputs, new_inputs)}
    consumers = {}
    nodes = []
    for depth in sorted(graph._nodes_by_depth, reverse=True):  # pylint: disable=protected-access
      for node in graph._nodes_by_depth[depth]:  # pylint: disable=protected-access
        if node.operation is None or node.is_input:
          continue
        nodes.append(node)
        for t in node.input_tensors:
          consumers.setdefault(id(t), []).append(node)
    outputs = {id(t) for t in graph.outputs}
    absorbed = set()

    def sole_consumer(t, across=False):
      """The one node that uses `t`, if one does. `across`: also beyond the
      graph's outputs (into the enclosing graph): only to decide where
      quantizers go, never to absorb a node of another graph."""
      if id(t) in outputs:
        return outer(t) if across and outer is not None else None
      users = consumers.get(id(t), [])
      return users[0] if len(users) == 1 else None

    def consumers_of(t):
      return consumers.get(id(t), [])

    for node in nodes:
      if id(node) in absorbed:
        continue
      if any(id(t) not in tensors for t in node.input_tensors):
        continue
      args, kwargs = node.arguments.fill_in(tensors)
      op = node.operation
      inner = functional_graph(op)
      if inner is not None:
        exits = {id(t): n for t, n in zip(inner.outputs, node.output_tensors)}
        result = self.run(
            inner, [tensors[id(t)] for t in node.input_tensors],
            lambda t, exits=exits: sole_consumer(exits[id(t)], across=True))
        for old, new in zip(node.output_tensors, result):
          tensors[id(old)] = new
        continue
      out, last = self.visit(node, op, args, kwargs, sole_consumer, absorbed,
                             consumers_of)
      for old, new in zip(keras.tree.flatten(last.output_tensors),
                          keras.tree.flatten(out)):
        tensors[id(old)] = new
    return [tensors[id(t)] for t in graph.outputs]

  @staticmethod
  def _feeds_a_shared_scale(tensor, sole_consumer):
    """Whether `tensor` only feeds a layer whose inputs take its output's
    quantization (TFLite's int8 CONCATENATION has one scale for its inputs
    and output): the converter gives such a tensor that layer's
    quantization, so it gets no quantizer of its own (as tfmot's
    ConcatTransform does)."""
    follower = sole_consumer(tensor, across=True)
    return follower is not None and registry.support_for(
        follower.operation).inputs_take_its_scale

  def visit(self, node, op, args, kwargs, sole_consumer, absorbed,
            consumers_of):
    """Builds the new tensors for `node` (and the nodes it absorbs); returns
    them with the last absorbed node, whose outputs they replace."""
    entry = registry.support_for(op)
    if entry.role == registry.WEIGHTED:
      return self.visit_weighted(node, op, entry, args, kwargs, sole_consumer,
                                 absorbed, consumers_of)
    if entry.role in (registry.AFFINE, registry.BATCH_NORM):
      result = self.visit_per_channel(node, op, args, sole_consumer,
                                      absorbed)
      if result is not None:
        return result
    if entry.role == registry.LAYER_NORM:
      result = self.visit_layer_norm(node, op, args, kwargs)
      if result is not None:
        return result
    if registry.is_op_node(op) and entry.role == registry.UNSUPPORTED:
      raise ValueError(
          f"quantize_model: the keras.ops node {op.name!r} "
          f"({type(op).__name__}) cannot be quantized: {entry.reason}. "
          "Write it with the ops or layers the table has (for x / c, "
          "x * (1 / c)), or move it outside the model.")
    if (entry.role == registry.ACTIVATION and not registry.is_op_node(op) and
        registry.activation_of(op) in _COMPOSITE_ACTIVATIONS):
      self.names.add(op.name)
      return self.activation_output(args[0], registry.activation_of(op),
                                    op.name, op.dtype_policy), node
    if entry.rebuild_as is not None:  # the int8 ops it becomes
      self.names.add(op.name)
      copy = op

      def quantize(t, name=f"{op.name}_step_quant"):
        return self.quantize(t, name=name, dtype=op.dtype_policy)
      out = entry.rebuild_as(op, *args, quantize)
    else:
      copy = self.unchanged(op)
      out = copy(*args, **kwargs)
    inputs = keras.tree.flatten((args, kwargs))
    source = self.quantizer_of.get(id(inputs[0])) if inputs else None
    if entry.role == registry.SAME_SCALE:
      if source is None:
        self.warn(op.name, (
            f"{type(op).__name__} keeps its input's scale, but its input "
            "has no quantizer of its own here: its rounding onto that grid "
            "is not simulated"))
        return out, node
      # Onto the input's grid, rounded as the int8 kernel rounds.
      out = source(out, update_range=False, ties_away_from_zero=True)
    if entry.role in (registry.KEEPS_SCALE, registry.INPUT,
                      registry.SAME_SCALE):
      if source is not None:
        for t in keras.tree.flatten(out):
          self.quantizer_of[id(t)] = source
      return out, node
    # An op node has no dtype policy: its quantizer computes in its dtype.
    dtype = getattr(copy, "dtype_policy", None) or keras.tree.flatten(
        node.output_tensors)[0].dtype
    if self._feeds_a_shared_scale(node.output_tensors[0], sole_consumer):
      return out, node  # the shared quantizer is this tensor's
    name = f"{op.name}_quant"
    if entry.role == registry.REQUANTIZING:
      follower = sole_consumer(node.output_tensors[0], across=True)
      if (follower is not None and _role(follower) == registry.ACTIVATION and
          registry.activation_of(follower.operation) in entry.fuses):
        return out, node  # the activation quantizes; TFLite fuses it
      return self.quantize(out, name=name, dtype=dtype), node
    act = (registry.activation_of(op) if entry.role == registry.ACTIVATION
           else None)
    if act is not None:
      return self.quantize(out, act, name=name, dtype=dtype), node
    if entry.role == registry.ACTIVATION:  # a ReLU with a slope, ...
      self.warn(op.name, f"{type(op).__name__} is not in the int8 scheme "
                "(an activation without an int8 kernel): copied with its "
                "output quantized; export checks that it converts to int8")
    else:
      self.warn(op.name, entry.warning)
    return self.quantize(out, name=name, dtype=dtype), node

  def _fused_follower(self, node, entry, sole_consumer):
    """The BatchNormalization and the activation `node` absorbs: (batch
    norm node or None, activation name, last absorbed node)."""
    last, batch_norm = node, None
    follower = sole_consumer(node.output_tensors[0])
    if ("batch_norm" in entry.fuses and follower is not None and
        _role(follower) == registry.BATCH_NORM and
        follower.operation.axis in (-1, len(node.output_tensors[0].shape) - 1)
        and not follower.arguments.kwargs.get("training")):
      batch_norm = follower
      last = follower
    fused, last = _fused_activation(last, entry.fuses, sole_consumer)
    return batch_norm, fused, last

  def visit_per_channel(self, node, op, args, sole_consumer, absorbed):
    """A constant per-channel affine map (AFFINE: Rescaling,
    Normalization, and those right after it) or a BatchNormalization that
    follows no Conv/Dense, with the ReLU/ReLU6 after it: one QuantizedLayer
    around a 1x1 depthwise convolution, as it runs in int8 (see the
    registry's roles). None where that does not apply (the input is not
    rank 3 or 4, or the layer does not act on its last axis): the caller
    then copies the layer."""
    x = args[0] if args else None
    rank = len(getattr(x, "shape", ()))
    if rank not in (3, 4) or len(args) != 1:
      return None
    channels = x.shape[-1]
    last = node
    batch_norm = None
    if _role(node) == registry.BATCH_NORM:
      if (op.axis not in (-1, rank - 1) or
          node.arguments.kwargs.get("training")):
        return None
      batch_norm = _copy(op, name=self.unique(op.name))
      kernel, bias = np.ones(channels, np.float32), None
      trainable = False
    else:
      kernel, bias = _affine_constants(op, rank, channels)
      if kernel is None:
        return None
      trainable = registry.support_for(op).trainable
      while not trainable:  # merge the constant affine maps that follow
        follower = sole_consumer(last.output_tensors[0])
        if (follower is None or _role(follower) != registry.AFFINE or
            registry.support_for(follower.operation).trainable):
          break
        k, b = _affine_constants(follower.operation, rank, channels)
        if k is None:
          break
        kernel, bias = kernel * k, bias * k + b
        last = follower
        absorbed.add(id(follower))
        self.report.folded.append(follower.operation.name)
      if not np.any(bias):
        bias = None
    fused, activation = _fused_activation(last, FUSED_ACTIVATIONS,
                                          sole_consumer)
    if activation is not last:
      absorbed.add(id(activation))
      last = activation
    wrapper = self._depthwise_affine(op, x, kernel, bias, trainable,
                                     batch_norm, fused)
    self.report.folded.append(op.name)
    if batch_norm is not None:
      self.weight_sources.append((wrapper, (None, op)))
    out = self.quantize(wrapper(x), fused, name=f"{op.name}_quant",
                        dtype=op.dtype_policy)
    return out, last

  def _depthwise_affine(self, op, x, kernel, bias, trainable,
                        batch_norm=None, fused="linear"):
    """A QuantizedLayer around a 1x1 depthwise convolution of `x` (rank 3
    or 4, channels last) with `kernel` and `bias` (None: no bias) per
    channel: how TFLite runs a per-channel affine map in int8."""
    rank = len(x.shape)
    depthwise = (keras.layers.DepthwiseConv2D if rank == 4
                 else keras.layers.DepthwiseConv1D)(
                     1, use_bias=bias is not None, trainable=trainable,
                     dtype=op.dtype_policy,
                     name=self.unique(f"{op.name}_depthwise"))
    depthwise.build(x.shape)
    depthwise.kernel.assign(kernel.reshape(depthwise.kernel.shape))
    if bias is not None:
      depthwise.bias.assign(bias)
    return QuantizedLayer(
        depthwise, batch_norm=batch_norm, activation=fused, use_bias=False,
        num_bits=8, per_channel=True, freeze_bn_delay=self.freeze_bn_delay,
        quantize_output=False, symmetric_output=self.symmetric,
        dtype=op.dtype_policy, name=self.unique(f"quant_{op.name}"))

  def visit_layer_norm(self, node, op, args, kwargs):
    """LayerNormalization as the int8 ops TFLite runs it (the registry's
    LAYER_NORM role): each intermediate on its own learned grid, then gamma
    and beta as a trainable 1x1 depthwise convolution. None where that does
    not apply (not over the last axis of a rank 2 to 4 input, rms_scaling):
    the caller then copies the layer, with a warning."""
    x = args[0] if len(args) == 1 and not kwargs else None
    rank = len(getattr(x, "shape", ()))
    axes = [op.axis] if isinstance(op.axis, int) else list(op.axis)
    if (rank not in (2, 3, 4) or len(axes) != 1 or
        axes[0] not in (-1, rank - 1) or op.rms_scaling):
      return None
    dtype = op.dtype_policy
    self.names.add(op.name)

    def step(t, what):
      return self.quantize(t, name=f"{op.name}_{what}_quant", dtype=dtype)

    channels = x.shape[-1]

    def channel_mean(t, what):
      """The mean over the channels as a Dense(1) of constant weights 1/C
      (exact on the weight grid): FULLY_CONNECTED's requantization rounds
      once in every LiteRT kernel, where the reference kernel of MEAN
      rounds twice when its shift right is short (a step off on a quarter
      of the outputs, measured) and XNNPACK's rounds once."""
      dense = keras.layers.Dense(1, use_bias=False, trainable=False,
                                 dtype=dtype,
                                 name=self.unique(f"{op.name}_{what}"))
      dense.build(t.shape)
      dense.kernel.assign(np.full((channels, 1), 1.0 / channels, np.float32))
      wrapper = QuantizedLayer(
          dense, num_bits=8, per_channel=True, quantize_output=False,
          symmetric_output=self.symmetric, dtype=dtype,
          name=self.unique(f"quant_{op.name}_{what}"))
      return step(wrapper(t), what)

    mean = channel_mean(x, "mean")
    centered = step(x - mean, "centered")
    square = step(centered * centered, "square")
    variance = channel_mean(square, "variance")
    inverse = step(keras.ops.rsqrt(step(variance + op.epsilon, "epsilon")),
                   "rsqrt")
    normalized = step(centered * inverse, "normalized")
    kernel = (keras.ops.convert_to_numpy(op.gamma).astype(np.float32)
              if op.scale else np.ones(channels, np.float32))
    bias = (keras.ops.convert_to_numpy(op.beta).astype(np.float32)
            if op.center else None)
    # [batch, C] goes through the depthwise convolution as [batch, 1, C]
    # (RESHAPEs, which keep the scale).
    rows = normalized[:, None, :] if rank == 2 else normalized
    wrapper = self._depthwise_affine(op, rows, kernel, bias,
                                     trainable=op.trainable)
    self.report.folded.append(op.name)
    out = wrapper(rows)
    out = self.quantize(out[:, 0, :] if rank == 2 else out,
                        name=f"{op.name}_quant", dtype=dtype)
    return out, node

  def visit_weighted(self, node, op, entry, args, kwargs, sole_consumer,
                     absorbed, consumers_of):
    act = registry.activation_of(op)
    last = node
    batch_norm = None
    fused = act if act in FUSED_ACTIVATIONS else "linear"
    if act == "linear":
      bn_node, fused, last = self._fused_follower(node, entry, sole_consumer)
      for absorbed_node in (bn_node, last):
        if absorbed_node is not node and absorbed_node is not None:
          absorbed.add(id(absorbed_node))
      batch_norm = None if bn_node is None else bn_node.operation
    # A SAME_SCALE op that reads the output (or a KEEPS_SCALE op's output
    # of it) rounds onto its grid, so the output quantizer must be a
    # graph-level one it can call again.
    graph_quantizer = _grid_is_read(last.output_tensors[0], consumers_of)
    copy = _copy(op, name=self.unique(op.name), activation="linear",
                 use_bias=False)
    bn_copy = None if batch_norm is None else _copy(
        batch_norm, name=self.unique(batch_norm.name))
    wrapper = QuantizedLayer(
        copy, batch_norm=bn_copy, activation=fused,
        use_bias=op.use_bias, num_bits=self.num_bits,
        per_channel=self.per_channel, freeze_bn_delay=self.freeze_bn_delay,
        quantize_output=not graph_quantizer and not (
            act in FUSED_ACTIVATIONS and self._feeds_a_shared_scale(
                last.output_tensors[0], sole_consumer)),
        symmetric_output=self.symmetric, dtype=op.dtype_policy,
        name=self.unique(f"quant_{op.name}"))
    self.report.quantized.append(op.name)
    if entry.warning:
      self.warn(op.name, entry.warning)
    if batch_norm is not None:
      self.report.folded.append(batch_norm.name)
    self.weight_sources.append((wrapper, (op, batch_norm)))
    out = wrapper(*args, **kwargs)
    if graph_quantizer:
      out = self.quantize(out, fused, name=f"{op.name}_quant",
                          dtype=op.dtype_policy)
    if act not in FUSED_ACTIVATIONS and act is not None:
      out = self.activation_output(out, act, f"{op.name}_activation",
                                   op.dtype_policy)
    elif act is None:
      self.warn(op.name, (
          "custom activation: applied after the output quantizer as a float "
          "op; give the layer a built-in activation"))
      out = keras.layers.Activation(op.activation)(out)
    return out, last


def _copy_weights(new, source):
  if isinstance(new, QuantizedLayer):
    layer, batch_norm = source
    if layer is None:  # a BatchNormalization on its own: the kernel is 1
      new.batch_norm.set_weights(batch_norm.get_weights())
      return
    for target, variable in zip(new.kernel_variables(),
                                _kernels.kernel_variables(layer)):
      target.assign(variable)
    if new.use_bias:
      new.bias.assign(layer.bias)
    if batch_norm is not None:
      new.batch_norm.set_weights(batch_norm.get_weights())
  else:
    new.set_weights(source.get_weights())


def _fused_activation(node, fuses, sole_consumer):
  """The activation an int8 op fuses after `node`: (its name, its node)
  when `node`'s sole consumer is an activation in `fuses`, else ("linear",
  node)."""
  follower = sole_consumer(node.output_tensors[0])
  if follower is not None and _role(follower) == registry.ACTIVATION:
    act = registry.activation_of(follower.operation)
    if act in fuses:
      return act, follower
  return "linear", node


def _grid_is_read(tensor, consumers_of, depth=0):
  """Whether a SAME_SCALE op rounds onto `tensor`'s grid: it reads the
  tensor, or the output of KEEPS_SCALE ops (padding, max pooling, ...) on
  it."""
  for node in consumers_of(tensor):
    role = _role(node)
    if role == registry.SAME_SCALE:
      return True
    if role == registry.KEEPS_SCALE and depth < 8 and any(
        _grid_is_read(t, consumers_of, depth + 1)
        for t in keras.tree.flatten(node.output_tensors)):
      return True
  return False


# Activations that TF's converter lowers to several int8 ops, each of whose
# outputs is quantized (_Rebuild.activation_output).
_COMPOSITE_ACTIVATIONS = ("swish", "silu", "hard_sigmoid")


def _affine_constants(layer, rank, channels):
  """(k, b) per channel, float32, with layer(x) == x * k + b over the last
  axis, read from the layer's own call on probes; (None, None) when the
  layer is not such a map (or not over the last axis)."""
  axis = getattr(layer, "axis", (-1,))
  if axis is not None and tuple(a % rank for a in axis) != (rank - 1,):
    return None, None
  shape = (1,) * (rank - 1) + (channels,)
  try:
    with tf.init_scope():
      probes = [np.asarray(layer(np.full(shape, v, np.float32)), np.float64)
                for v in (0.0, 1.0, 2.0)]
  except Exception:  # pylint: disable=broad-except
    return None, None
  f0, f1, f2 = (p.reshape(-1) for p in probes)
  k, b = f1 - f0, f0
  if f0.size != channels or not np.allclose(f2, b + 2 * k, rtol=1e-5,
                                            atol=1e-6):
    return None, None
  return k.astype(np.float32), b.astype(np.float32)


def rebuild(model, num_bits=8, per_channel_weights=True, freeze_bn_delay=None,
            symmetric_activations=False):
  """The int8 QAT graph of `model`: (inputs, outputs, report), with the
  weights copied from `model`."""
  graph = functional_graph(model)
  if graph is None:
    raise ValueError(
        "quantize_model: the model has no functional graph (a subclassed "
        "model, or a Sequential without an Input); rebuild it with "
        "keras.Input or as a Sequential starting with keras.Input(shape).")
  walk = _Rebuild(num_bits, per_channel_weights, freeze_bn_delay,
                  symmetric_activations)
  names = [t._keras_history.operation.name for t in graph.inputs]  # pylint: disable=protected-access
  inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype,
                        name=walk.unique(name))
            for t, name in zip(graph.inputs, names)]
  quantized_inputs = [walk.quantize(x, name=f"{name}_quant")
                      if x.dtype in ("float16", "bfloat16", "float32",
                                     "float64") else x
                      for name, x in zip(names, inputs)]
  outputs = walk.run(graph, quantized_inputs)

  def copy_weights():
    for new, source in walk.weight_sources:
      _copy_weights(new, source)
  return inputs, outputs, walk.report, copy_weights
