"""How tf_qdq.keras quantizes each Keras layer type: one entry per layer class.

This table is the only place that decides it. The int8 rebuild
(tf_qdq.keras.int8.rebuild) walks the float model's graph and asks
`support_for(layer)` what to do with each layer; `QuantizedLayer` reads the
kernels and their channel axes from it; the symmetric_qdq scheme takes the
weighted entries that name it; the LiteRT and ONNX exporters read what the
runtimes do with sub-8-bit weights and which ONNX input holds a weight.

Roles (what TFLite's int8 runtime does with the layer, and so what QAT
simulates):

* WEIGHTED: Conv/Dense. Fake-quantized kernels (per output channel,
  symmetric, narrow range), the BatchNormalization and ReLU/ReLU6 that follow
  folded in (`fuses`), an output quantizer. A layer with several kernels
  (SeparableConv2D) runs as a chain of `stages`, one kernel each, with an
  int8 tensor between them, as the runtime runs it.
* REQUANTIZING: int8 kernels that rescale (Add, pooling averages, ...): an
  output quantizer. `fuses` names the activations TFLite fuses into the op,
  which then quantize in its place.
* KEEPS_SCALE: int8 kernels that keep their input's scale and zero point
  (max pooling, reshapes, padding, dropout, ...): copied, no quantizer.
* SAME_SCALE: int8 kernels whose output takes their input's scale and zero
  point but holds new values (average pooling, bilinear resizing): the output
  is rounded onto the input's grid by the input's own quantizer, called again
  without updating its range (TFLite's same-scale constraint).
* AFFINE: a per-channel x * k + b with constant k, b (Rescaling,
  Normalization): runs as a 1x1 DEPTHWISE_CONV_2D with k as its per-channel
  kernel (exact on the weight grid) and b as its int32 bias; consecutive ones
  merge into one. At the model's input the int8 input so takes raw values.
* ACTIVATION: the output range follows from the activation (`activation_of`):
  fixed for softmax, sigmoid and tanh (their int8 kernels' output range), a
  learned range otherwise.
* BATCH_NORM: folded into the weighted layer it follows; on its own
  (pre-activation BN), a 1x1 DEPTHWISE_CONV_2D of kernel 1 with the BN
  folded into it as into any convolution, with the ReLU/ReLU6 that follows
  fused: per-channel constants, an int32 bias, one rounding.
* LAYER_NORM: LayerNormalization over the last axis, as int8 ops TFLite
  runs: the mean (a FULLY_CONNECTED of weights 1/C), SUB, MUL (the square),
  its mean, ADD (epsilon), RSQRT, MUL, each output on its own learned grid,
  then gamma and beta as one 1x1 DEPTHWISE_CONV_2D (per-channel int8 gamma,
  int32 beta) whose kernel and bias train.
* INPUT: the model's inputs (the rebuild gives float inputs a quantizer).
* UNSUPPORTED: not in the int8 scheme: copied with its output quantized and
  a warning naming `reason`; export checks what the converter made of it.
  A class without an entry is treated so too.

A WEIGHTED entry matches its class exactly: a subclass may compute something
else in `call`, so it is UNSUPPORTED until it has an entry of its own. Other
roles match subclasses.

keras.ops nodes of a functional graph (`x + 3.0`, `keras.ops.reshape`,
`x[:, 0]`) are Operations, not layers: `OP_SUPPORT` gives their roles by
class name, and quantize_model refuses an op without an entry, naming it.

Adding a layer type is adding an entry here (with its test); see
docs/architecture.md, "How to add a layer type".
"""
import dataclasses
from typing import Callable, Optional, Tuple

import keras

L = keras.layers

WEIGHTED = "weighted"
REQUANTIZING = "requantizing"
KEEPS_SCALE = "keeps_scale"
SAME_SCALE = "same_scale"
AFFINE = "affine"
ACTIVATION = "activation"
BATCH_NORM = "batch_norm"
LAYER_NORM = "layer_norm"
INPUT = "input"
UNSUPPORTED = "unsupported"

SCHEMES = ("int8", "symmetric_qdq")


@dataclasses.dataclass(frozen=True)
class Kernel:
  """One kernel of a weighted layer.

  attribute: the layer's variable ("kernel", "depthwise_kernel", ...).
  output_axes: the kernel axes whose product is the output channel, which
    gets its own weight scale (Dense/Conv: (-1,); DepthwiseConv2D: (-2, -1),
    in * depth_multiplier; Conv2DTranspose: (-2,)).
  litert_keeps_low_bits: whether LiteRT stores a grid narrower than 8 bits
    exactly for this kernel (a per-channel CONV_2D does); else its weights
    move onto an 8-bit scale. A callable takes the layer.
  """
  attribute: str
  output_axes: Tuple[int, ...] = (-1,)
  litert_keeps_low_bits: object = False

  def keeps_low_bits(self, layer):
    keep = self.litert_keeps_low_bits
    return bool(keep(layer) if callable(keep) else keep)


@dataclasses.dataclass(frozen=True)
class LayerSupport:
  """One layer class: see the module docstring for the roles.

  kernels: WEIGHTED: the kernels, in the order the stages use them; the
    last one's output channels are the layer's (bias, BatchNormalization).
  stages: WEIGHTED with several kernels: `stages(layer)` gives one function
    (x, kernel) -> y per kernel, in Keras ops (or, for one kernel, the
    computation the runtimes take: a grouped Conv2D's); None (or `stages`
    giving None): the layer's own call with its kernels replaced.
  fuses: the followers folded into this layer: "batch_norm", and the
    activations ("relu", "relu6") the int8 op applies before its output
    quantizer.
  inputs_take_its_scale: TFLite gives the inputs the output's quantization
    (CONCATENATION has one scale): the tensors that only feed it get no
    quantizer of their own.
  litert_op: the LiteRT op(s) it becomes.
  onnx_weight_inputs: {ONNX op type: input index of the weight} of the nodes
    tf2onnx makes of it; the ONNX exporter stores those weights as integers.
    ONNX keeps every grid of 2..8 bits exactly (int8 integers).
  schemes: the quantize_model schemes that quantize its weights.
  warning: what quantize_model reports for every such layer.
  reason: UNSUPPORTED: why.
  role_of: where the role depends on the layer's arguments (UpSampling2D's
    interpolation), `role_of(layer)` gives it; `role` is then the default.
  rebuild_as: REQUANTIZING layers that TFLite runs as several int8 ops:
    `rebuild_as(layer, inputs, quantize)` computes the layer with Keras ops
    on the new graph's tensors, passing each intermediate int8 tensor
    through `quantize`; the rebuild quantizes the result.
  trainable: AFFINE: k is a trained weight (LayerScale's gamma), so the
    depthwise kernel that holds it trains too; else it is a constant.
  rows_on_one_axis: WEIGHTED: the layer contracts the last axis of any rank
    (Dense: a tensordot on rank > 2), so the export runs it on the rows
    flattened to [-1, features], where TFLite's converter fuses the bias
    and activation into FULLY_CONNECTED.
  """
  role: str
  kernels: Tuple[Kernel, ...] = ()
  stages: Optional[Callable] = None
  fuses: Tuple[str, ...] = ()
  inputs_take_its_scale: bool = False
  litert_op: str = ""
  onnx_weight_inputs: Tuple[Tuple[str, int], ...] = ()
  schemes: Tuple[str, ...] = ("int8",)
  warning: str = ""
  reason: str = ""
  role_of: Optional[Callable] = None
  rebuild_as: Optional[Callable] = None
  trainable: bool = False
  rows_on_one_axis: bool = False


def _separable_stages(layer):
  """SeparableConv: a depthwise convolution (the layer's strides, padding
  and dilation), then a 1x1 convolution, as TFLite runs it (DEPTHWISE_CONV_2D
  then CONV_2D, an int8 tensor between them)."""
  ops = keras.ops

  def depthwise(x, kernel):
    return ops.depthwise_conv(x, kernel, strides=layer.strides,
                              padding=layer.padding,
                              data_format=layer.data_format,
                              dilation_rate=layer.dilation_rate)

  def pointwise(x, kernel):
    return ops.conv(x, kernel, strides=1, padding="valid",
                    data_format=layer.data_format)
  return depthwise, pointwise


def _grouped_conv_stages(layer):
  """Conv2D with groups > 1: where each group reads one input channel
  (groups == input channels: ConvNeXt's 7x7 layers, a depthwise
  convolution written as a grouped Conv2D), one stage of
  keras.ops.depthwise_conv with the kernel [kh, kw, 1, filters] as
  [kh, kw, groups, filters / groups] (the same output-channel order), which
  TFLite runs as DEPTHWISE_CONV_2D and tf2onnx converts; Keras' own grouped
  convolution is an XLA function that tf2onnx cannot convert. Other grouped
  convolutions keep keras.ops.conv's (the layer's) computation."""
  if layer.groups == 1:
    return None
  ops = keras.ops

  def grouped(x, kernel):
    if kernel.shape[-2] == 1 and layer.data_format == "channels_last":
      kernel = ops.reshape(kernel, (*kernel.shape[:2], layer.groups,
                                    kernel.shape[-1] // layer.groups))
      return ops.depthwise_conv(x, kernel, strides=layer.strides,
                                padding=layer.padding,
                                data_format=layer.data_format,
                                dilation_rate=layer.dilation_rate)
    return ops.conv(x, kernel, strides=layer.strides, padding=layer.padding,
                    data_format=layer.data_format,
                    dilation_rate=layer.dilation_rate)
  return (grouped,)


def _upsampling_role(layer):
  # Nearest neighbour copies values; bilinear makes new ones.
  return SAME_SCALE if layer.interpolation == "bilinear" else KEEPS_SCALE


def _resizing_role(layer):
  return KEEPS_SCALE if layer.interpolation == "nearest" else SAME_SCALE


def _conv2d_keeps_low_bits(layer):
  return layer.groups == 1  # grouped convolutions are not CONV_2D in LiteRT


_FUSES = ("batch_norm", "relu", "relu6")
_CONV = (("Conv", 1),)
_BOTH_SCHEMES = SCHEMES

LAYER_SUPPORT = {
    # -- weighted --------------------------------------------------------------
    L.Dense: LayerSupport(
        WEIGHTED, (Kernel("kernel"),), fuses=_FUSES,
        litert_op="FULLY_CONNECTED",
        onnx_weight_inputs=(("MatMul", 1), ("Gemm", 1)),
        schemes=_BOTH_SCHEMES, rows_on_one_axis=True),
    L.Conv1D: LayerSupport(
        WEIGHTED, (Kernel("kernel"),), fuses=_FUSES,
        litert_op="CONV_2D (with RESHAPEs)", onnx_weight_inputs=_CONV,
        schemes=_BOTH_SCHEMES),
    L.Conv2D: LayerSupport(
        WEIGHTED,
        (Kernel("kernel", litert_keeps_low_bits=_conv2d_keeps_low_bits),),
        stages=_grouped_conv_stages, fuses=_FUSES,
        litert_op="CONV_2D (DEPTHWISE_CONV_2D where groups == input "
        "channels)", onnx_weight_inputs=_CONV, schemes=_BOTH_SCHEMES),
    L.Conv3D: LayerSupport(
        WEIGHTED, (Kernel("kernel"),), fuses=_FUSES, litert_op="none in int8",
        onnx_weight_inputs=_CONV, schemes=_BOTH_SCHEMES,
        warning=("Conv3D is quantized, but LiteRT has no int8 CONV_3D: it "
                 "ships to ONNX and the stock SavedModel, and to LiteRT only "
                 "in float (export(..., allow_float_ops=True))")),
    L.DepthwiseConv2D: LayerSupport(
        WEIGHTED, (Kernel("kernel", output_axes=(-2, -1)),), fuses=_FUSES,
        litert_op="DEPTHWISE_CONV_2D", onnx_weight_inputs=_CONV,
        schemes=_BOTH_SCHEMES),
    L.DepthwiseConv1D: LayerSupport(
        WEIGHTED, (Kernel("kernel", output_axes=(-2, -1)),), fuses=_FUSES,
        litert_op="DEPTHWISE_CONV_2D (with RESHAPEs)",
        onnx_weight_inputs=_CONV),
    L.Conv2DTranspose: LayerSupport(
        WEIGHTED, (Kernel("kernel", output_axes=(-2,)),), fuses=_FUSES,
        litert_op="TRANSPOSE_CONV",
        onnx_weight_inputs=(("ConvTranspose", 1),), schemes=_BOTH_SCHEMES),
    L.SeparableConv2D: LayerSupport(
        WEIGHTED,
        (Kernel("depthwise_kernel", output_axes=(-2, -1)),
         Kernel("pointwise_kernel", litert_keeps_low_bits=True)),
        stages=_separable_stages, fuses=_FUSES,
        litert_op="DEPTHWISE_CONV_2D + CONV_2D", onnx_weight_inputs=_CONV),
    # -- requantizing ----------------------------------------------------------
    L.Add: LayerSupport(REQUANTIZING, fuses=("relu", "relu6"),
                        litert_op="ADD"),
    L.Subtract: LayerSupport(REQUANTIZING, litert_op="SUB"),
    L.Multiply: LayerSupport(REQUANTIZING, litert_op="MUL"),
    L.Concatenate: LayerSupport(REQUANTIZING, inputs_take_its_scale=True,
                                litert_op="CONCATENATION"),
    L.Average: LayerSupport(REQUANTIZING, litert_op="ADD + MUL"),
    L.Maximum: LayerSupport(REQUANTIZING, litert_op="MAXIMUM"),
    L.Minimum: LayerSupport(REQUANTIZING, litert_op="MINIMUM"),
    **{cls: LayerSupport(REQUANTIZING, litert_op="MEAN")
       for cls in (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D,
                   L.GlobalAveragePooling3D)},
    # -- keeps its input's quantization ----------------------------------------
    **{cls: LayerSupport(KEEPS_SCALE)
       for cls in (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D,
                   L.GlobalMaxPooling1D, L.GlobalMaxPooling2D,
                   L.GlobalMaxPooling3D, L.Reshape, L.Flatten, L.Dropout,
                   L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D,
                   L.GaussianDropout, L.GaussianNoise, L.AlphaDropout,
                   L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
                   L.Cropping1D, L.Cropping2D, L.Cropping3D, L.Permute,
                   L.RepeatVector, L.UpSampling1D, L.Identity,
                   L.ActivityRegularization)},
    # -- keeps its input's scale, rounds onto its grid -------------------------
    **{cls: LayerSupport(SAME_SCALE, litert_op="AVERAGE_POOL_2D")
       for cls in (L.AveragePooling1D, L.AveragePooling2D,
                   L.AveragePooling3D)},
    L.UpSampling2D: LayerSupport(
        KEEPS_SCALE, role_of=_upsampling_role,
        litert_op="RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR"),
    L.Resizing: LayerSupport(
        SAME_SCALE, role_of=_resizing_role,
        litert_op="RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR"),
    # -- constant per-channel affine maps: one 1x1 DEPTHWISE_CONV_2D -----------
    L.Rescaling: LayerSupport(AFFINE, litert_op="DEPTHWISE_CONV_2D"),
    L.Normalization: LayerSupport(AFFINE, litert_op="DEPTHWISE_CONV_2D"),
    # -- activations, normalization, inputs ------------------------------------
    L.ReLU: LayerSupport(ACTIVATION, litert_op="RELU / RELU6 (or fused)"),
    L.Activation: LayerSupport(ACTIVATION, litert_op="by activation"),
    L.Softmax: LayerSupport(ACTIVATION, litert_op="SOFTMAX"),
    L.LeakyReLU: LayerSupport(ACTIVATION, litert_op="LEAKY_RELU"),
    L.PReLU: LayerSupport(ACTIVATION, litert_op="PRELU"),
    L.BatchNormalization: LayerSupport(
        BATCH_NORM, litert_op="folded, or a 1x1 DEPTHWISE_CONV_2D",
        warning=("BatchNormalization that follows no Conv/Dense and whose "
                 "input is not rank 3 or 4 (channels last): it runs as int8 "
                 "MUL/ADD whose constants the converter quantizes; that "
                 "rounding is not simulated")),
    L.LayerNormalization: LayerSupport(
        LAYER_NORM, litert_op="FULLY_CONNECTED, SUB, MUL, FULLY_CONNECTED, "
        "ADD, RSQRT, MUL, DEPTHWISE_CONV_2D",
        warning=("LayerNormalization that is not over the last axis of a "
                 "rank 2 to 4 input, or uses rms_scaling: copied, it runs "
                 "in float")),
    L.InputLayer: LayerSupport(INPUT),
    # -- not in the int8 scheme yet --------------------------------------------
    **{cls: LayerSupport(UNSUPPORTED, reason=(
        "a transposed convolution other than Conv2DTranspose: its kernel "
        "stays float"))
       for cls in (L.Conv1DTranspose, L.Conv3DTranspose)},
    L.SeparableConv1D: LayerSupport(UNSUPPORTED, reason=(
        "SeparableConv1D has no entry yet (SeparableConv2D has): its "
        "kernels stay float")),
    L.ELU: LayerSupport(UNSUPPORTED, reason=(
        "TF's converter keeps ELU in float (measured: a float ELU op "
        "between int8 ops); use LeakyReLU, ReLU or swish")),
}


def _scaled_residual(layer, inputs, quantize):
  """InceptionResNetV2's CustomScaleLayer, inputs[0] + inputs[1] * scale:
  TFLite's MUL by the constant, then ADD."""
  return inputs[0] + quantize(inputs[1] * layer.scale)


# Layers of keras.applications that are not keras.layers, by qualified class
# name (their modules are Keras' private keras.src).
NAMED_LAYER_SUPPORT = {
    "keras.src.applications.inception_resnet_v2.CustomScaleLayer":
        LayerSupport(REQUANTIZING, fuses=("relu", "relu6"),
                     rebuild_as=_scaled_residual, litert_op="MUL + ADD"),
    "keras.src.applications.convnext.LayerScale":
        LayerSupport(AFFINE, trainable=True, litert_op="DEPTHWISE_CONV_2D"),
}


def _named_support(cls):
  return NAMED_LAYER_SUPPORT.get(f"{cls.__module__}.{cls.__qualname__}")


# keras.ops nodes of functional graphs (`x + 3.0`, `keras.ops.reshape(x, s)`,
# `x[:, 0]`): Keras Operations, not layers, keyed by their class name (the
# classes live in Keras' private keras.src.ops). An op without an entry
# cannot be promised an int8 kernel: quantize_model refuses it, naming it.
_KEEPS = LayerSupport(KEEPS_SCALE)
OP_SUPPORT = {
    "Add": LayerSupport(REQUANTIZING, fuses=("relu", "relu6"),
                        litert_op="ADD"),
    "Subtract": LayerSupport(REQUANTIZING, litert_op="SUB"),
    "Multiply": LayerSupport(REQUANTIZING, litert_op="MUL"),
    "Maximum": LayerSupport(REQUANTIZING, litert_op="MAXIMUM"),
    "Minimum": LayerSupport(REQUANTIZING, litert_op="MINIMUM"),
    "Mean": LayerSupport(REQUANTIZING, litert_op="MEAN"),
    "AveragePool": LayerSupport(SAME_SCALE, litert_op="AVERAGE_POOL_2D"),
    "Concatenate": LayerSupport(REQUANTIZING, inputs_take_its_scale=True,
                                litert_op="CONCATENATION"),
    **{name: _KEEPS for name in (
        "Reshape", "Transpose", "GetItem", "Slice", "ExpandDims", "Squeeze",
        "Pad", "Max", "Tile", "Repeat", "Flip")},
    **{name: LayerSupport(ACTIVATION, litert_op=name.upper())
       for name in ("Relu", "Relu6", "Sigmoid", "Tanh", "Softmax")},
}
_OP_ACTIVATIONS = {"Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid",
                   "Tanh": "tanh", "Softmax": "softmax"}


def is_op_node(operation):
  """Whether a functional graph's node runs a keras.ops Operation (or
  another Operation that is not a layer) rather than a layer."""
  return not isinstance(operation, keras.layers.Layer)


def _op_support(operation):
  name = type(operation).__name__
  entry = OP_SUPPORT.get(name) if type(operation).__module__.startswith(
      "keras.src.ops") else None
  if entry is not None:
    return entry
  return LayerSupport(UNSUPPORTED, reason=(
      f"{type(operation).__module__}.{name} is not in "
      "tf_qdq.keras.registry.OP_SUPPORT, so it has no int8 kernel tf_qdq "
      "can promise"))


def _unsupported(layer, reason):
  return LayerSupport(UNSUPPORTED, reason=reason, warning=(
      f"{type(layer).__name__} is not in the int8 scheme ({reason}): copied "
      "with its output quantized; export checks that it converts to int8"))


def support_for(layer):
  """The entry for `layer`, or for a keras.ops node's Operation (an
  UNSUPPORTED one with a reason when the tables have none)."""
  if is_op_node(layer):
    return _op_support(layer)
  cls = type(layer)
  named = _named_support(cls)
  if named is not None:
    return named
  for base in cls.__mro__:
    entry = LAYER_SUPPORT.get(base)
    if entry is None:
      continue
    if entry.role == WEIGHTED and base is not cls:
      return _unsupported(layer, f"a subclass of {base.__name__}, whose call "
                          "may differ")
    if entry.role == UNSUPPORTED:
      return _unsupported(layer, entry.reason)
    if entry.role_of is not None:
      return dataclasses.replace(entry, role=entry.role_of(layer),
                                 role_of=None)
    return entry
  return _unsupported(layer, "no entry in tf_qdq.keras.registry")


def weighted(layer, scheme="int8"):
  """The entry of a layer whose weights `scheme` quantizes, else None."""
  entry = support_for(layer)
  return entry if entry.role == WEIGHTED and scheme in entry.schemes else None


def weighted_types(scheme="int8"):
  """The layer classes whose weights `scheme` quantizes."""
  return tuple(cls for cls, entry in LAYER_SUPPORT.items()
               if entry.role == WEIGHTED and scheme in entry.schemes)


def onnx_weight_inputs():
  """{ONNX op type: input index of its weight} over every weighted entry."""
  inputs = {}
  for entry in LAYER_SUPPORT.values():
    inputs.update(entry.onnx_weight_inputs)
  return inputs


def activation_of(layer):
  """"relu", "relu6", "softmax", ... for an activation layer or op, or a
  layer's `activation` attribute; None when it is not a known built-in."""
  if is_op_node(layer):
    name = _OP_ACTIVATIONS.get(type(layer).__name__)
    if name == "softmax" and getattr(layer, "axis", -1) not in (-1, [-1]):
      return None
    return name
  if isinstance(layer, L.ReLU):
    plain = (not layer.negative_slope and not layer.threshold)
    if plain and layer.max_value is None:
      return "relu"
    if plain and layer.max_value == 6:
      return "relu6"
    return None
  if isinstance(layer, L.Softmax):
    return "softmax" if layer.axis in (-1, [-1]) else None
  if isinstance(layer, L.LeakyReLU):
    return "leaky_relu"
  if isinstance(layer, L.PReLU):
    return "prelu"
  fn = layer.activation if isinstance(layer, L.Activation) else getattr(
      layer, "activation", None)
  if fn is None:
    return None
  name = keras.activations.serialize(fn)
  return name if isinstance(name, str) else None
