"""ONNX export of an "int8"-scheme QAT model, through tf2onnx.

tf2onnx turns each FakeQuantWithMinMaxVars (8 bits, full range, constant
scalar range: what ActivationQuantizer exports) into QuantizeLinear +
DequantizeLinear with the same scale and zero point. The kernels arrive as
float constants already on their per-channel grids; a last pass stores each
as an 8-bit integer initializer with a per-channel DequantizeLinear (opset >=
13), the QDQ form that onnxruntime and TensorRT run as integer convolutions
and matmuls.

Which 8-bit type a weight is stored in decides whether onnxruntime computes it
right on every x86 CPU. Without VNNI (SSE4.1, AVX2 and AVX-512 CPUs before
Cascade Lake / Zen 4) onnxruntime's fused uint8 x int8 kernels multiply with
VPMADDUBSW, which adds two adjacent uint8 x int8 products into a saturating
int16: 2 * 255 * 127 = 64770 does not fit in 32767, so a full 8-bit weight
grid can give wrong outputs there (measured: 39 output steps on an MLP), while
the same file is exact on a VNNI CPU and with the optimizations off. Two
encodings never saturate:
* weights on a 7-bit grid, |q| <= 63 (2 * 255 * 63 = 32130): a model trained
  with quantize_model(..., num_bits=7); stored as int8, the fast kernels;
* uint8 weights with zero point 128 (the same grid, shifted): onnxruntime runs
  them on its uint8 x uint8 kernels, which widen to int16 before multiplying.
  Exact on every CPU, and slower (docs/onnx_weights.md).
`weight_dtype="auto"` (the default) picks int8 where the grid allows and uint8
for full 8-bit grids, so the shipped file equals the QAT model everywhere.
"""
import os
import warnings

import numpy as np

from tf_qdq.keras import registry
from tf_qdq.keras.export.trace import all_layers
from tf_qdq.keras.export.trace import check_int8_scheme
from tf_qdq.keras.export.trace import concrete_function
from tf_qdq.keras.int8.activations import ActivationQuantizer

# {ONNX op: input index of its weight}, from the layer-support table.
_WEIGHT_INPUT = registry.onnx_weight_inputs()

WEIGHT_DTYPES = ("auto", "int8", "uint8")

# The largest |integer weight| whose products with uint8 activations cannot
# saturate VPMADDUBSW's int16 pair sums: 2 * 255 * 63 = 32130 <= 32767.
PAIR_SUM_SAFE_LEVELS = 63

_SATURATION_FIX = (
    "onnxruntime's default kernels on x86 CPUs without VNNI (AVX2, SSE4.1, "
    "AVX-512 before VNNI) saturate int16 pair sums on full 8-bit int8 weights "
    "and give wrong outputs there. Train with tf_qdq.keras.quantize_model("
    "model, num_bits=7) (7-bit weights: int8, exact and fast on every CPU)")


def _check_quantizers(model, symmetric):
  asymmetric = []
  for layer in all_layers(model):
    if not isinstance(layer, ActivationQuantizer):
      continue
    if layer.num_bits != 8:
      raise ValueError(
          f"tf_qdq.keras.export(format='onnx'): {layer.name} quantizes to "
          f"{layer.num_bits} bits; ONNX QuantizeLinear is 8-bit.")
    if not layer.symmetric:
      asymmetric.append(layer.name)
  if symmetric and asymmetric:
    raise ValueError(
        "tf_qdq.keras.export(format='onnx', symmetric_activations=True): "
        f"quantizers {asymmetric} have a zero point; train the QAT model from "
        "tf_qdq.keras.quantize_model(model, symmetric_activations=True).")


def _zero_point_zero(proto):
  """QuantizeLinear/DequantizeLinear on uint8 with zero point 128 (what
  tf2onnx makes of a symmetric FakeQuant) as int8 with zero point 0: the same
  grid, in the form TensorRT requires. Returns how many were changed."""
  from onnx import numpy_helper  # pylint: disable=import-outside-toplevel
  graph = proto.graph
  inits = {i.name: i for i in graph.initializer}
  changed = set()
  for node in graph.node:
    if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
      continue
    if len(node.input) < 3 or node.input[2] not in inits:
      continue
    name = node.input[2]
    zero = numpy_helper.to_array(inits[name])
    if zero.dtype == np.int8 and not zero.any():
      continue  # a weight's, or already changed
    if zero.dtype != np.uint8 or np.any(zero != 128):
      raise ValueError(f"tf_qdq.keras.export: {node.name} has zero point "
                       f"{zero} ({zero.dtype}), not a symmetric grid.")
    if name not in changed:
      inits[name].CopyFrom(numpy_helper.from_array(
          np.zeros(zero.shape, np.int8), name))
      changed.add(name)
  return len(changed)


def _per_channel_grid(w):
  """(int8 values, scales, axis) when `w` lies on a symmetric per-channel grid
  of 2..8 bits along some axis (scale = max|w| / (2^(bits-1) - 1) per
  channel), else None. A grid narrower than 8 bits is stored as int8 values
  in [-(2^(bits-1) - 1), 2^(bits-1) - 1], exactly. Tries the output-channel
  axes ONNX uses: 0 for Conv, 1 for ConvTranspose and MatMul."""
  for bits, axis in ((b, a) for b in range(8, 1, -1) for a in (0, 1)):
    if w.ndim < 2:
      return None
    levels = 2 ** (bits - 1) - 1
    other = tuple(i for i in range(w.ndim) if i != axis)
    limit = np.abs(w).max(axis=other, keepdims=True)
    scale = np.where(limit > 0, limit / levels, 1.0).astype(np.float32)
    k = w / scale
    ints = np.round(k)
    if np.all(np.abs(k - ints) < 1e-3) and np.all(np.abs(ints) <= levels):
      return ints.astype(np.int8), scale.reshape(-1), axis
  return None


def _stored_weights(ints, dtype):
  """The integer grid `ints` as `dtype` ("int8" or "uint8"), and its zero
  point: int8 as it is with zero point 0; uint8 shifted by 128, zero point 128
  (q - 128 is the same integer, so DequantizeLinear gives the same floats)."""
  if dtype == "int8":
    return ints.astype(np.int8), 0
  return (ints.astype(np.int16) + 128).astype(np.uint8), 128


def _quantize_weights(proto, storage):
  """Replaces float weight initializers on a per-channel grid by 8-bit integer
  initializers and a DequantizeLinear; `storage(name, ints)` says "int8" or
  "uint8" for each. Returns how many were replaced and the names of weights
  that were not on a grid."""
  import onnx  # pylint: disable=import-outside-toplevel
  from onnx import helper, numpy_helper  # pylint: disable=import-outside-toplevel
  graph = proto.graph
  inits = {i.name: i for i in graph.initializer}
  def weight_input(node):
    index = _WEIGHT_INPUT.get(node.op_type)
    return node.input[index] if index is not None and len(
        node.input) > index else None

  uses, weight_uses = {}, {}
  for node in graph.node:
    for name in node.input:
      uses[name] = uses.get(name, 0) + 1
    name = weight_input(node)
    if name is not None:
      weight_uses[name] = weight_uses.get(name, 0) + 1
  replaced, skipped = 0, []
  new_nodes = []
  for node in graph.node:
    name = weight_input(node)
    # An initializer only weights read (tf2onnx shares equal constants, such
    # as the 1/C kernels of several LayerNormalization means) is stored
    # once, its DequantizeLinear before its first reader.
    if name in inits and uses.get(name) == weight_uses.get(name):
      w = numpy_helper.to_array(inits[name])
      grid = _per_channel_grid(w) if w.dtype == np.float32 else None
      if grid is None:
        skipped.append(name)
      else:
        ints, scale, axis = grid
        stored, zero = _stored_weights(ints, storage(name, ints))
        graph.initializer.remove(inits[name])
        graph.initializer.extend([
            numpy_helper.from_array(stored, f"{name}_quantized"),
            numpy_helper.from_array(scale, f"{name}_scale"),
            numpy_helper.from_array(np.full(scale.shape, zero, stored.dtype),
                                    f"{name}_zero_point")])
        new_nodes.append(helper.make_node(
            "DequantizeLinear",
            [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"],
            [name],
            axis=axis, name=f"{name}_dequantize"))
        del inits[name]
        replaced += 1
    new_nodes.append(node)
  del graph.node[:]
  graph.node.extend(new_nodes)
  onnx.checker.check_model(proto)
  return replaced, skipped


def _storage_policy(weight_dtype, symmetric_activations):
  """`storage(name, ints)` for _quantize_weights, and the lists it fills: the
  weights stored as uint8, and the int8 ones that can saturate."""
  if weight_dtype not in WEIGHT_DTYPES:
    raise ValueError(f"tf_qdq.keras.export(format='onnx'): weight_dtype must "
                     f"be one of {WEIGHT_DTYPES}, got {weight_dtype!r}.")
  if weight_dtype == "uint8" and symmetric_activations:
    raise ValueError(
        "tf_qdq.keras.export(format='onnx'): weight_dtype='uint8' with "
        "symmetric_activations=True would pair int8 activations with uint8 "
        "weights, which onnxruntime's integer kernels do not take; train with "
        "tf_qdq.keras.quantize_model(model, symmetric_activations=True, "
        "num_bits=7) and export with weight_dtype='int8'.")
  as_uint8, saturating = [], []

  def storage(name, ints):
    safe = int(np.abs(ints).max(initial=0)) <= PAIR_SUM_SAFE_LEVELS
    if weight_dtype == "uint8" or (weight_dtype == "auto" and not safe
                                   and not symmetric_activations):
      as_uint8.append(name)
      return "uint8"
    if not safe:
      saturating.append(name)
    return "int8"
  return storage, as_uint8, saturating


def _erfc_as_one_minus_erf(ctx, node, name, args):  # pylint: disable=unused-argument
  """tf2onnx's handler (its custom_op_handlers API) for TF's Erfc, which it
  has none for and TF's exact GELU computes with (0.5 x erfc(-x/sqrt 2)):
  1 - Erf(x), ONNX's own Erf. Within a float32 rounding of erfc where the
  GELU's output is not near 0, which the quantizer after it rounds away."""
  import tf2onnx  # pylint: disable=import-outside-toplevel
  erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=name)
  one = ctx.make_const(tf2onnx.utils.make_name(f"{name}_one"),
                       np.array(1.0, np.float32))
  node.type = "Sub"
  node.domain = ""
  ctx.replace_inputs(node, [one.output[0], erf.output[0]])


_CUSTOM_OP_HANDLERS = {"Erfc": (_erfc_as_one_minus_erf, [])}

# TF ops that tf2onnx leaves unconverted in graphs the int8 scheme makes,
# and what to do instead.
_UNCONVERTED_HINTS = {
    "PartitionedCall": "a function call, e.g. Keras' grouped Conv2D "
                       "(1 < groups < its input channels), which the TF "
                       "backend compiles with XLA; LiteRT takes it",
    "StatefulPartitionedCall": "a function call (see PartitionedCall)",
}


def _check_converted(proto, onnx):
  """ValueError naming the TF ops tf2onnx could not convert (it leaves them
  in the graph as nodes no ONNX runtime has), with the layer they come from
  and what to do."""
  missing = {}
  for node in proto.graph.node:
    if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type):
      missing.setdefault(node.op_type, node.name)
  if missing:
    parts = [f"{op} (at {name}: {_UNCONVERTED_HINTS.get(op, 'no converter')})"
             for op, name in sorted(missing.items())]
    raise ValueError("tf_qdq.keras.export(format='onnx'): tf2onnx cannot "
                     "convert these TF ops: " + "; ".join(parts) + ". Change "
                     "those layers, or export to LiteRT or the stock "
                     "SavedModel.")


def export_onnx(model, filepath, input_signature, verbose, opset=13,
                symmetric_activations=False, weight_dtype="auto"):
  """See tf_qdq.keras.export."""
  check_int8_scheme(model, "onnx")
  try:
    import onnx  # pylint: disable=import-outside-toplevel
    import tf2onnx  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("tf_qdq.keras.export(format='onnx') needs tf2onnx and "
                      "onnx: pip install tf2onnx onnx") from e
  if int(opset) < 13:
    raise ValueError("tf_qdq.keras.export(format='onnx'): per-channel "
                     f"DequantizeLinear needs opset >= 13, got {opset}.")
  storage, as_uint8, saturating = _storage_policy(weight_dtype,
                                                  symmetric_activations)
  _check_quantizers(model, symmetric_activations)
  # The int8 average pooling and resize the QAT model simulates round ties
  # away from zero (TFLite's kernels); ONNX computes them in float and its
  # QuantizeLinear rounds halves to even, so the tie shift travels along.
  serve, _ = concrete_function(model, input_signature, simulates_kernels=True)
  signature = serve.input_signature
  proto, _ = tf2onnx.convert.from_function(
      serve, input_signature=signature, opset=int(opset),
      custom_op_handlers=dict(_CUSTOM_OP_HANDLERS))
  _check_converted(proto, onnx)
  replaced, skipped = _quantize_weights(proto, storage)
  if symmetric_activations:
    _zero_point_zero(proto)
    onnx.checker.check_model(proto)
  if skipped:
    warnings.warn("tf_qdq.keras.export(format='onnx'): weights "
                  f"{skipped} are not on a per-channel int8 grid and stay "
                  "float.", stacklevel=3)
  if saturating:
    alternative = "" if symmetric_activations else (
        ", or export with weight_dtype='auto' (uint8 weights)")
    warnings.warn(
        f"tf_qdq.keras.export(format='onnx'): weights {saturating} are int8 "
        f"on the full 8-bit grid. {_SATURATION_FIX}{alternative}.",
        stacklevel=3)
  onnx.save(proto, os.fspath(filepath))
  if verbose:
    print(f"tf_qdq.keras.export: wrote {filepath} (ONNX opset {opset}, "
          f"{replaced} weight tensors: {replaced - len(as_uint8)} int8, "
          f"{len(as_uint8)} uint8)")
    if as_uint8 and weight_dtype == "auto":
      print("  full 8-bit weight grids are stored as uint8 (zero point 128), "
            "which onnxruntime computes exactly on every x86 CPU, on its "
            "slower uint8 x uint8 kernels; quantize_model(..., num_bits=7) "
            "keeps int8 weights that are exact and fast everywhere.")
  return filepath
