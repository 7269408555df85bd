"""Rewrites a SavedModel's tf_qdq ops into TensorFlow's built-in ops, so that
a process without tf_qdq (TF Serving, the C++ loader) can load it:

    python -m tf_qdq.saved_model_rewrite SRC_DIR DST_DIR

or `tf_qdq.saved_model_rewrite.rewrite_saved_model(src, dst)`. The older names
`python -m tf_qdq.export` and `tf_qdq.export.rewrite_saved_model` are an alias
of this module (tf_qdq/export.py). Signatures, variables and assets are kept
(the graph's nodes change op name; variables/ and assets/ are copied as they
are).

Each `TfQdq>Name` op becomes TF's `Name`: same inputs, outputs and attrs,
and, where TF is right, the same bits. Where it is not, the rewrite says so:
* float16/bfloat16 nodes run TF's float32 kernel between Cast nodes, which
  is how tf_qdq defines them (computed in float32, rounded once:
  docs/semantics.md D2): same bits;
* it refuses (ValueError, naming the node) what TF's kernels cannot give:
  float64 FakeQuant (TF has float32 only, and a cast would change the bits)
  and per-channel QDQ with a given range (TF's V4 kernel rejects it, D4). For
  Keras models, tf_qdq.keras.export writes exact stock graphs for every
  dtype;
* it warns, per op type, where TF's kernel gives other bits on some inputs:
  the FakeQuant gradients' min/max sums (TF's float sums depend on the thread
  count; tf_qdq's are deterministic double sums, D7) and QDQ with the range
  taken from data holding NaN or zeros of both signs (D12, D13).
"""
import argparse
import os
import shutil
import sys
import warnings

from tensorflow.core.framework import node_def_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

from tf_qdq._library import FLOAT_ONLY_SUFFIX
from tf_qdq._tf_internal import op_def_registry

__all__ = ["main", "rewrite_saved_model", "tf_qdq_ops_in"]

_NAME = "tf_qdq.saved_model_rewrite"  # in messages and the command line
_F32, _F64 = types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE
_QDQ_TYPES = (_F32, _F64)
_HALF_TYPES = (types_pb2.DT_HALF, types_pb2.DT_BFLOAT16)

# tf_qdq op -> (TF op, dtypes TF's CPU kernel has, whether to drop attr T,
# a caveat where TF's bits can differ, or None)
_OPS = {
    "QuantizeAndDequantizeV4": (_QDQ_TYPES, False, "qdq"),
    "QuantizeAndDequantizeV2": (_QDQ_TYPES, False, "qdq"),
    "QuantizeAndDequantizeV4Grad": (_QDQ_TYPES, False, None),
    "FakeQuantWithMinMaxArgs": ((_F32,), True, None),
    "FakeQuantWithMinMaxArgsGradient": ((_F32,), True, None),
    "FakeQuantWithMinMaxVars": ((_F32,), True, None),
    "FakeQuantWithMinMaxVarsGradient": ((_F32,), True, "sums"),
    "FakeQuantWithMinMaxVarsPerChannel": ((_F32,), True, None),
    "FakeQuantWithMinMaxVarsPerChannelGradient": ((_F32,), True, "sums"),
}

_CAVEATS = {
    "qdq": ("with range_given=False, TF's kernel takes the range of data "
            "holding NaN or zeros of both signs differently "
            "(docs/semantics.md D12, D13); other inputs give the same bits"),
    "sums": ("the min/max backprops are TF's float sums, whose last bits "
             "depend on the thread count; tf_qdq's are deterministic double "
             "sums (docs/semantics.md D7); the input backprop is "
             "bit-identical"),
}


def _rewrite_node(node, where, caveats):
  """Turns `node` into TF's op in place; returns its dtype when it is 16-bit
  (the caller then casts around it), else None."""
  name = node.op[len("TfQdq>"):]
  base = name[:-len(FLOAT_ONLY_SUFFIX)]
  if name.endswith(FLOAT_ONLY_SUFFIX) and base in _OPS:
    name = base  # the eager path's float-only twin
  if name.startswith("FakeQuantWithMovingAverage"):
    raise ValueError(f"{where}: node {node.name!r} ({node.op}) is a training "
                     "step of tf_qdq.keras' ActivationQuantizer; export the "
                     "model's inference graph (training=False), e.g. with "
                     "tf_qdq.keras.export(...).")
  if name not in _OPS:
    raise ValueError(f"{where}: node {node.name!r} is a tf_qdq op {node.op!r} "
                     "with no TensorFlow built-in counterpart.")
  dtypes, drop_t, caveat = _OPS[name]
  attrs = node.attr  # a protobuf map: reading a missing key would add it
  dtype = attrs["T"].type if "T" in attrs else _F32
  if dtype not in dtypes + _HALF_TYPES:
    raise ValueError(
        f"{where}: node {node.name!r} ({node.op}) computes in "
        f"{types_pb2.DataType.Name(dtype)}, for which TensorFlow's {name} has "
        "no kernel and no cast gives tf_qdq's bits. Export Keras models with "
        "tf_qdq.keras.export(..., format='tf_saved_model'), which writes "
        "stock graphs for every dtype.")
  range_given = "range_given" in attrs and attrs["range_given"].b
  axis = attrs["axis"].i if "axis" in attrs else -1
  if (name in ("QuantizeAndDequantizeV4", "QuantizeAndDequantizeV2") and
      range_given and axis != -1):
    raise ValueError(
        f"{where}: node {node.name!r} ({node.op}) is per-channel with a given "
        "range, which TensorFlow's kernel rejects (docs/semantics.md D4).")
  node.op = name
  if drop_t and "T" in attrs:
    del attrs["T"]
  elif "T" in attrs:
    attrs["T"].type = _F32 if dtype in _HALF_TYPES else dtype
  if caveat:
    caveats.add((name, _CAVEATS[caveat]))
  return dtype if dtype in _HALF_TYPES else None


def _cast(name, source, src, dst):
  cast = node_def_pb2.NodeDef(name=name, op="Cast", input=[source])
  cast.attr["SrcT"].type = src
  cast.attr["DstT"].type = dst
  cast.attr["Truncate"].b = False
  return cast


def _rewrite_nodes(nodes, where, caveats, counts, in_function):
  """Rewrites the tf_qdq nodes of one graph or function. A 16-bit node runs
  TF's float32 kernel between casts: our op's definition for half and
  bfloat16 (computed in float32, rounded once), so the bits are the same.
  Returns {old reference: new reference} for the node's consumers."""
  renames, added = {}, []
  for node in nodes:
    if not node.op.startswith("TfQdq>"):
      continue
    op = node.op
    counts[op] = counts.get(op, 0) + 1
    dtype = _rewrite_node(node, where, caveats)
    if dtype is None:
      continue
    if not in_function:
      raise ValueError(f"{where}: 16-bit node {node.name!r} outside a "
                       "function; only function graphs (TF2 SavedModels) are "
                       "rewritten with casts.")
    original, node.name = node.name, node.name + "/float32"
    for i, source in enumerate(node.input):
      if not source.startswith("^"):
        cast = _cast(f"{original}/input_{i}_float32", source, dtype, _F32)
        added.append(cast)
        node.input[i] = f"{cast.name}:y:0"
    for arg in op_def_registry.get(node.op).output_arg:
      cast = _cast(f"{original}/{arg.name}", f"{node.name}:{arg.name}:0",
                   _F32, dtype)
      added.append(cast)
      renames[f"{original}:{arg.name}:0"] = f"{cast.name}:y:0"
    renames[f"^{original}"] = f"^{node.name}"
  nodes.extend(added)
  return renames


def _load(saved_model_dir):
  with open(os.path.join(os.fspath(saved_model_dir), "saved_model.pb"),
            "rb") as f:
    return saved_model_pb2.SavedModel.FromString(f.read())


def _node_lists(proto):
  """(where, nodes, function or None) for the graph and every function of
  every meta graph."""
  for meta in proto.meta_graphs:
    yield "graph", meta.graph_def.node, None
    for fn in meta.graph_def.library.function:
      yield f"function {fn.signature.name}", fn.node_def, fn


def tf_qdq_ops_in(saved_model_dir):
  """The set of tf_qdq op types a SavedModel's graphs use (empty: it loads
  without tf_qdq)."""
  return {node.op for _, nodes, _ in _node_lists(_load(saved_model_dir))
          for node in nodes if node.op.startswith("TfQdq>")}


def rewrite_saved_model(src, dst):
  """Writes to `dst` a copy of the SavedModel `src` with every tf_qdq op
  replaced by TensorFlow's built-in. Returns {op name: count}; warns once per
  op type whose bits TF's kernel can change (see the module docstring)."""
  src, dst = os.fspath(src), os.fspath(dst)
  proto = _load(src)
  counts, caveats = {}, set()
  for where, nodes, function in _node_lists(proto):
    renames = _rewrite_nodes(nodes, where, caveats, counts,
                             function is not None)
    if renames:
      for node in nodes:
        node.input[:] = [renames.get(source, source) for source in node.input]
      for key, value in function.ret.items():
        function.ret[key] = renames.get(value, value)
  if os.path.exists(dst):
    raise FileExistsError(f"{_NAME}: {dst} exists; give a new directory.")
  os.makedirs(dst)
  for sub in ("variables", "assets", "assets.extra"):
    if os.path.isdir(os.path.join(src, sub)):
      shutil.copytree(os.path.join(src, sub), os.path.join(dst, sub))
  with open(os.path.join(dst, "saved_model.pb"), "wb") as f:
    f.write(proto.SerializeToString())
  for name, caveat in sorted(caveats):
    warnings.warn(f"{_NAME}: {name}: {caveat}.", stacklevel=2)
  return counts


def main(argv=None, prog=f"python -m {_NAME}"):
  """The command line; `prog` is the name --help shows (the alias passes
  its own)."""
  parser = argparse.ArgumentParser(
      prog=prog,
      description="Rewrite a SavedModel's tf_qdq ops into TensorFlow "
                  "built-ins, for processes without tf_qdq (TF Serving).")
  parser.add_argument("src", help="the SavedModel directory to read")
  parser.add_argument("dst", help="a new directory for the rewritten copy")
  args = parser.parse_args(argv)
  try:
    counts = rewrite_saved_model(args.src, args.dst)
  except (ValueError, FileExistsError, OSError) as e:
    print(f"{_NAME}: error: {e}", file=sys.stderr)
    return 1
  total = sum(counts.values())
  print(f"{_NAME}: wrote {args.dst}: {total} tf_qdq ops rewritten"
        + ("".join(f"\n  {op}: {n}" for op, n in sorted(counts.items()))))
  return 0


if __name__ == "__main__":
  sys.exit(main())
