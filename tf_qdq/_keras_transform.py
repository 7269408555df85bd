"""quantize_model's "int8" scheme: rebuilds a functional graph so that it
computes what TFLite's int8 runtime computes (see tf_qdq._keras_int8).

The rebuild walks the model's nodes in order and, for each:
* Conv/Dense (the QUANTIZABLE_LAYERS): absorbs the BatchNormalization and the
  ReLU/ReLU6 that follow it (when each is the sole consumer and not a model
  output) into one QuantizedLayer, whose output is quantized;
* Add followed by its sole consumer ReLU/ReLU6: left unquantized (TFLite
  fuses the ReLU into ADD), the ReLU's output is quantized;
* Add, Subtract, Multiply, Concatenate, average/global-average pooling,
  standalone activations: the layer, then an ActivationQuantizer (a fixed
  range for softmax, sigmoid and tanh, as TFLite's int8 kernels have);
* a tensor that only feeds a Concatenate gets no quantizer: TFLite gives it
  the Concatenate's scale;
* max pooling, reshapes, padding, cropping, dropout, ...: copied, keeping
  their input's quantization (int8 kernels that do not rescale);
* anything else: copied and its output quantized, with a warning naming it:
  whether it runs in int8 is the converter's decision, and export checks.
Model inputs get an ActivationQuantizer first (the int8 model's input
QUANTIZE). Nested functional/Sequential models are inlined.
"""
import logging

import keras

from tf_qdq import _keras_activations as _activations
from tf_qdq import _keras_int8 as _int8
from tf_qdq._keras_layers import kernel_variable

_logger = logging.getLogger("tf_qdq.keras")

L = keras.layers

# Layers whose int8 kernels keep the input's scale and zero point.
_KEEPS_QUANTIZATION = (
    L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.GlobalMaxPooling1D,
    L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.Reshape, L.Flatten,
    L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D,
    L.GaussianDropout, L.GaussianNoise, L.AlphaDropout, L.ZeroPadding1D,
    L.ZeroPadding2D, L.ZeroPadding3D, L.Cropping1D, L.Cropping2D,
    L.Cropping3D, L.Permute, L.RepeatVector, L.UpSampling1D, L.UpSampling2D,
    L.Identity, L.ActivityRegularization)

# Layers with int8 kernels that requantize: their output gets a quantizer.
_REQUANTIZING = (
    L.Add, L.Subtract, L.Multiply, L.Concatenate, L.Average, L.Maximum,
    L.Minimum, L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
    L.GlobalAveragePooling1D, L.GlobalAveragePooling2D,
    L.GlobalAveragePooling3D)


def activation_name(layer):
  """"relu", "relu6", "softmax", ... for an activation layer or a layer's
  `activation` attribute; None when it is not a known built-in."""
  if isinstance(layer, L.ReLU):
    plain = (not layer.negative_slope and not layer.threshold)
    if plain and layer.max_value is None:
      return "relu"
    if plain and layer.max_value == 6:
      return "relu6"
    return None
  if isinstance(layer, L.Softmax):
    return "softmax" if layer.axis in (-1, [-1]) else None
  fn = layer.activation if isinstance(layer, L.Activation) else getattr(
      layer, "activation", None)
  if fn is None:
    return None
  name = keras.activations.serialize(fn)
  return name if isinstance(name, str) else None


def _feeds_concatenate(tensor, sole_consumer):
  """Whether `tensor` only feeds a Concatenate. TFLite's int8 CONCATENATION
  has one scale for its inputs and output, so the converter gives such a
  tensor the Concatenate's quantization: it gets no quantizer of its own (as
  tfmot's ConcatTransform does)."""
  follower = sole_consumer(tensor, across=True)
  return follower is not None and isinstance(follower.operation,
                                             L.Concatenate)


def _functional_graph(op):
  """The functional graph of a nested Sequential/functional model (None for
  anything else, and for subclassed models)."""
  if not isinstance(op, keras.Model):
    return None
  graph = op._functional if isinstance(op, keras.Sequential) else op  # pylint: disable=protected-access
  return graph if hasattr(graph, "_nodes_by_depth") else None


def _copy(layer, **overrides):
  config = {**layer.get_config(), **overrides}
  return layer.__class__.from_config(config)


class _Rebuild:
  """One pass over a functional graph (and the graphs nested in it)."""

  def __init__(self, num_bits, per_channel, freeze_bn_delay, symmetric):
    self.symmetric = symmetric
    self.num_bits = num_bits
    self.per_channel = per_channel
    self.freeze_bn_delay = freeze_bn_delay
    self.weight_sources = []   # (new layer, callable that copies weights)
    self.quantized = []        # names of original Conv/Dense layers
    self.folded = []           # names of BatchNormalizations folded
    self.warnings = []         # (layer name, message)
    self.names = set()

  def unique(self, name):
    candidate, i = name, 1
    while candidate in self.names:
      i += 1
      candidate = f"{name}_{i}"
    self.names.add(candidate)
    return candidate

  def quantizer(self, activation=None, name="quant", dtype=None):
    return _activations.output_quantizer_for(activation, name=self.unique(name),
                                      dtype=dtype, symmetric=self.symmetric)

  # -- the walk -----------------------------------------------------------------

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

    for node in nodes:
      if id(node) in absorbed:
        continue
      if any(id(t) not in tensors for t in node.input_tensors):
        continue
      args, kwargs = node.arguments.fill_in(tensors)
      op = node.operation
      inner = _functional_graph(op)
      if inner is not None:
        exits = {id(t): n for t, n in zip(inner.outputs, node.output_tensors)}
        result = self.run(
            inner, [tensors[id(t)] for t in node.input_tensors],
            lambda t, exits=exits: sole_consumer(exits[id(t)], across=True))
        for old, new in zip(node.output_tensors, result):
          tensors[id(old)] = new
        continue
      out, last = self.visit(node, op, args, kwargs, sole_consumer, absorbed)
      for old, new in zip(keras.tree.flatten(last.output_tensors),
                          keras.tree.flatten(out)):
        tensors[id(old)] = new
    return [tensors[id(t)] for t in graph.outputs]

  def visit(self, node, op, args, kwargs, sole_consumer, absorbed):
    """Builds the new tensors for `node` (and the nodes it absorbs); returns
    them with the last absorbed node, whose outputs they replace."""
    if type(op) in _int8.QUANTIZABLE_LAYERS:  # pylint: disable=unidiomatic-typecheck
      return self.visit_quantizable(node, op, args, kwargs, sole_consumer,
                                    absorbed)
    copy = _copy(op, name=self.unique(op.name))
    self.weight_sources.append((copy, op))
    out = copy(*args, **kwargs)
    if isinstance(op, _KEEPS_QUANTIZATION):
      return out, node
    if isinstance(op, L.InputLayer):
      return out, node
    dtype = copy.dtype_policy
    if _feeds_concatenate(node.output_tensors[0], sole_consumer):
      return out, node  # the Concatenate's quantizer is this tensor's
    if isinstance(op, _REQUANTIZING):
      follower = sole_consumer(node.output_tensors[0], across=True)
      if (isinstance(op, (L.Add,)) and follower is not None and
          activation_name(follower.operation) in ("relu", "relu6")):
        return out, node  # the ReLU quantizes; TFLite fuses it into ADD
      return self.quantizer(name=f"{op.name}_quant", dtype=dtype)(out), node
    act = activation_name(op) if isinstance(
        op, (L.ReLU, L.Activation, L.Softmax)) else None
    if act is not None:
      return self.quantizer(act, name=f"{op.name}_quant", dtype=dtype)(out), node
    if isinstance(op, L.BatchNormalization):
      self.warnings.append((op.name, (
          "BatchNormalization that does not follow a Conv/Dense layer: it "
          "runs as int8 MUL/ADD whose constants the converter quantizes; "
          "that rounding is not simulated")))
    else:
      self.warnings.append((op.name, (
          f"{type(op).__name__} is not in the int8 scheme: copied with its "
          "output quantized; export checks that it converts to int8")))
    return self.quantizer(name=f"{op.name}_quant", dtype=dtype)(out), node

  def visit_quantizable(self, node, op, args, kwargs, sole_consumer,
                        absorbed):
    act = activation_name(op)
    last = node
    batch_norm = None
    fused = act if act in _activations.FUSED_ACTIVATIONS else "linear"
    if act == "linear":
      follower = sole_consumer(node.output_tensors[0])
      if (follower is not None and
          isinstance(follower.operation, L.BatchNormalization) and
          follower.operation.axis in (-1, len(node.output_tensors[0].shape) - 1)
          and not follower.arguments.kwargs.get("training")):
        batch_norm = follower.operation
        absorbed.add(id(follower))
        last = follower
      follower = sole_consumer(last.output_tensors[0])
      if follower is not None:
        follower_act = activation_name(follower.operation)
        if (follower_act in ("relu", "relu6") and isinstance(
            follower.operation, (L.ReLU, L.Activation))):
          fused = follower_act
          absorbed.add(id(follower))
          last = follower
    copy = _copy(op, name=self.unique(op.name), activation="linear",
                 use_bias=False)
    bn_copy = None if batch_norm is None else _copy(
        batch_norm, name=self.unique(batch_norm.name))
    wrapper = _int8.QuantizedLayer(
        copy, batch_norm=bn_copy, activation=fused,
        use_bias=op.use_bias, num_bits=self.num_bits,
        per_channel=self.per_channel, freeze_bn_delay=self.freeze_bn_delay,
        quantize_output=not (act in _activations.FUSED_ACTIVATIONS and
                             _feeds_concatenate(last.output_tensors[0],
                                                sole_consumer)),
        symmetric_output=self.symmetric, dtype=op.dtype_policy,
        name=self.unique(f"quant_{op.name}"))
    self.quantized.append(op.name)
    if isinstance(op, L.Conv3D):
      self.warnings.append((op.name, (
          "Conv3D is quantized, but LiteRT has no int8 CONV_3D: it ships to "
          "ONNX and the stock SavedModel, and to LiteRT only in float "
          "(export(..., allow_float_ops=True))")))
    if batch_norm is not None:
      self.folded.append(batch_norm.name)
    self.weight_sources.append((wrapper, (op, batch_norm)))
    out = wrapper(*args, **kwargs)
    if act not in _activations.FUSED_ACTIVATIONS and act is not None:
      activation = L.Activation(act, name=self.unique(f"{op.name}_activation"),
                                dtype=op.dtype_policy)
      out = self.quantizer(act, name=f"{op.name}_activation_quant",
                           dtype=op.dtype_policy)(activation(out))
    elif act is None:
      self.warnings.append((op.name, (
          "custom activation: applied after the output quantizer as a float "
          "op; give the layer a built-in activation")))
      out = L.Activation(op.activation)(out)
    return out, last


@keras.saving.register_keras_serializable(package="tf_qdq")
class QuantizedModel(keras.Model):
  """The functional model quantize_model returns (int8 scheme). It is a
  keras.Model in every way but one: `export` ships the int8 model through
  tf_qdq.keras.export for "litert"/"tflite", "onnx" and "tf_saved_model"
  (Keras' own export would trace the training-time graph, whose tf_qdq ops
  no converter reads). Other formats go to keras.Model.export."""

  def export(self, filepath, format="tf_saved_model", verbose=None,  # pylint: disable=redefined-builtin
             input_signature=None, **kwargs):
    from tf_qdq import _keras_export  # pylint: disable=import-outside-toplevel
    if format not in _keras_export.FORMATS:
      return super().export(filepath, format=format, verbose=verbose,
                            input_signature=input_signature, **kwargs)
    return _keras_export.export(self, filepath, format=format,
                                verbose=True if verbose is None else verbose,
                                input_signature=input_signature, **kwargs)


def _copy_weights(new, source):
  if isinstance(new, _int8.QuantizedLayer):
    layer, batch_norm = source
    kernel_variable(new.layer).assign(kernel_variable(layer))
    if new.use_bias:
      new.bias.assign(layer.bias)
    if batch_norm is not None:
      new.batch_norm.set_weights(batch_norm.get_weights())
  else:
    new.set_weights(source.get_weights())


def quantize_model_int8(model, num_bits=8, per_channel_weights=True,
                        freeze_bn_delay=None, symmetric_activations=False,
                        verbose=True):
  """The "int8" scheme of tf_qdq.keras.quantize_model."""
  graph = _functional_graph(model)
  if graph is None:
    raise ValueError(
        "quantize_model: the model has no functional graph (a subclassed "
        "model, or a Sequential without an Input); rebuild it with "
        "keras.Input or as a Sequential starting with keras.Input(shape).")
  rebuild = _Rebuild(num_bits, per_channel_weights, freeze_bn_delay,
                     symmetric_activations)
  names = [t._keras_history.operation.name for t in graph.inputs]  # pylint: disable=protected-access
  inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype,
                        name=rebuild.unique(name))
            for t, name in zip(graph.inputs, names)]
  quantized_inputs = [rebuild.quantizer(name=f"{name}_quant")(x)
                      if x.dtype in ("float16", "bfloat16", "float32",
                                     "float64") else x
                      for name, x in zip(names, inputs)]
  outputs = rebuild.run(graph, quantized_inputs)
  qat = QuantizedModel(inputs if len(inputs) > 1 else inputs[0],
                       outputs if len(outputs) > 1 else outputs[0],
                       name=f"{model.name}_qat")
  for new, source in rebuild.weight_sources:
    _copy_weights(new, source)
  qat.quantized_layers = tuple(rebuild.quantized)
  qat.folded_batch_norms = tuple(rebuild.folded)
  qat.unquantized_layers = tuple(name for name, _ in rebuild.warnings
                                 if name not in rebuild.quantized)
  qat.quantization_warnings = tuple(rebuild.warnings)
  message = (f"tf_qdq.keras.quantize_model (int8): {len(rebuild.quantized)} "
             f"Conv/Dense layers with {num_bits}-bit weights, "
             f"{len(rebuild.folded)} BatchNormalizations folded.")
  for name, why in rebuild.warnings:
    message += f"\n  {name}: {why}"
  _logger.info(message)
  if verbose:
    print(message)
  return qat
