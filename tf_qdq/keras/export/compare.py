"""tf_qdq.keras.compare: where an exported model parts from its QAT model.

Every int8 tensor of a QAT model of the "int8" scheme is the output of an
ActivationQuantizer (a QuantizedLayer's output quantizer, or one in the
graph), on that quantizer's grid. The exported file holds the same tensors as
int8 values with a scale and a zero point. `compare` runs both on the same
inputs, pairs each Keras tensor with the runtime tensor of the same shape and
grid, and reports, in that tensor's own steps, how far the runtime is from
the QAT model, beside how far the runtime is from itself (two of its kernel
sets on the same file): a deep net amplifies one-step roundings, so only a
difference above the runtime's own noise points at a fault.

The runtimes, and what "its own noise" is for each:

* .tflite: LiteRT's built-in optimized kernels against its reference kernels
  (`experimental_preserve_all_tensors` keeps every intermediate tensor; the
  XNNPACK delegate keeps them inside its own graph, so the per-tensor rows
  are of the built-in kernels, and the final outputs are also compared with
  XNNPACK's).
* .onnx: onnxruntime with ORT_DISABLE_ALL (every QuantizeLinear output
  becomes a graph output, so the graph runs as written) against its default
  optimizations on the same augmented graph, whose extra outputs keep some
  QuantizeLinear nodes from being fused away: the per-tensor rows at the
  default level are of that graph, and the final outputs are also compared
  with the unmodified file at its default optimizations.
"""
import dataclasses
import os

import keras
import numpy as np

from tf_qdq.keras.export import ort_runner
from tf_qdq.keras.export.litert import feed_sample
from tf_qdq.keras.export.litert import run_litert
from tf_qdq.keras.export.trace import check_int8_scheme
from tf_qdq.keras.int8.activations import ActivationQuantizer
from tf_qdq.keras.int8.layers import QuantizedLayer

__all__ = ["Comparison", "TensorComparison", "compare"]

# A tensor "parts" from the QAT model where its mean |diff| exceeds both of
# these: half a step (an int8 kernel that requantizes in integers rounds some
# values a step away from the float simulation; half of them a step off, or
# fewer a long way off, is a fault), and the runtime's own noise on that
# tensor with the slack the project's tests allow.
PART_MEAN_STEPS = 0.5
NOISE_SLACK = 1.1


@dataclasses.dataclass
class TensorComparison:
  """One int8 tensor: the QAT model's against the runtime's, in steps of its
  grid. `runtime_name` is None where the file has no tensor of that shape
  and grid (fused away, or never quantized)."""
  name: str
  shape: tuple
  scale: float
  runtime_name: object
  max_steps: float = float("nan")
  mean_steps: float = float("nan")
  cosine: float = float("nan")
  noise_max_steps: float = float("nan")
  noise_mean_steps: float = float("nan")

  @property
  def parts(self):
    """Whether the runtime is further from the QAT model here than from
    itself (see PART_MEAN_STEPS)."""
    if self.runtime_name is None:
      return False
    noise = 0.0 if np.isnan(self.noise_mean_steps) else self.noise_mean_steps
    return self.mean_steps > max(PART_MEAN_STEPS, NOISE_SLACK * noise)


@dataclasses.dataclass
class Comparison:
  """What `compare` found: a row per quantized tensor in graph order, and the
  final outputs against each kernel set ({label: (max, mean) in steps})."""
  runtime: str
  noise_label: str
  tensors: list
  outputs: dict

  @property
  def first_parting(self):
    """The first tensor (in graph order) where the runtime parts from the
    QAT model, or None."""
    return next((t for t in self.tensors if t.parts), None)

  def table(self):
    """The report as text, one line per tensor."""
    header = (f"{'tensor':40s} {'shape':>16s} {'max':>6s} {'mean':>7s} "
              f"{'cosine':>8s} | {'noise max':>9s} {'mean':>7s}")
    lines = [f"tf_qdq.keras.compare: QAT model vs {self.runtime}, in each "
             f"tensor's steps; noise: {self.noise_label}", header,
             "-" * len(header)]
    for t in self.tensors:
      shape = "x".join(str(d) for d in t.shape)
      if t.runtime_name is None:
        lines.append(f"{t.name[:40]:40s} {shape:>16s}  not in the file "
                     "(fused, or no int8 tensor of this grid)")
        continue
      mark = "  <- parts here" if t is self.first_parting else ""
      lines.append(f"{t.name[:40]:40s} {shape:>16s} {t.max_steps:6.1f} "
                   f"{t.mean_steps:7.3f} {t.cosine:8.5f} | "
                   f"{t.noise_max_steps:9.1f} {t.noise_mean_steps:7.3f}{mark}")
    for label, (mx, mean) in self.outputs.items():
      lines.append(f"final output, {label}: max {mx:.1f}, mean {mean:.3f} "
                   "steps")
    first = self.first_parting
    lines.append("first tensor where they part: " +
                 (first.name if first else "none (within the runtime's own "
                  "noise everywhere)"))
    return "\n".join(lines)

  def __str__(self):
    return self.table()


def _grid(quantizer):
  """(scale, zero point) of an ActivationQuantizer's inference range as
  FakeQuant nudges it (int8: quantized value -128 at the nudged minimum)."""
  mn, mx = quantizer.range()
  levels = 2 ** quantizer.num_bits - 1
  scale = (mx - mn) / levels
  zero = float(np.clip(np.round(-128 - mn / scale), -128, levels - 128)
               ) if scale > 0 else 0.0
  return scale, zero


def _quantized_tensors(model):
  """[(name, KerasTensor, quantizer)] of the functional model's int8
  tensors, inputs first."""
  if not hasattr(model, "_nodes_by_depth"):
    raise TypeError("tf_qdq.keras.compare takes a functional QAT model (from "
                    "tf_qdq.keras.quantize_model), got "
                    f"{type(model).__name__}.")
  found = []
  for depth in sorted(model._nodes_by_depth, reverse=True):  # pylint: disable=protected-access
    for node in model._nodes_by_depth[depth]:  # pylint: disable=protected-access
      layer = node.operation
      if isinstance(layer, ActivationQuantizer):
        quantizer = layer
      elif (isinstance(layer, QuantizedLayer)
            and layer.output_quantizer is not None):
        quantizer = layer.output_quantizer
      else:
        continue
      for i, tensor in enumerate(node.output_tensors):
        name = layer.name if len(node.output_tensors) == 1 else (
            f"{layer.name}:{i}")
        found.append((name, tensor, quantizer))
  return found


def _steps(a, b, scale):
  return np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) / scale


def _cosine(a, b):
  a = np.asarray(a, np.float64).ravel()
  b = np.asarray(b, np.float64).ravel()
  norm = np.linalg.norm(a) * np.linalg.norm(b)
  return float(a @ b / norm) if norm > 0 else float(np.array_equal(a, b))


def _as_list(inputs):
  return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


# ---- LiteRT --------------------------------------------------------------


def _litert_tensors(path, inputs, resolver):
  """{tensor name: (values over the samples, dequantized), (scale, zero,
  shape)} for every int8/uint8 tensor of a .tflite file, one sample at a
  time."""
  from ai_edge_litert import interpreter as litert  # pylint: disable=import-outside-toplevel
  interp = litert.Interpreter(
      model_path=os.fspath(path), experimental_preserve_all_tensors=True,
      experimental_op_resolver_type=resolver)
  in_details = interp.get_input_details()
  for d, x in zip(in_details, inputs):
    interp.resize_tensor_input(d["index"], [1, *np.shape(x)[1:]])
  interp.allocate_tensors()
  # Scalars are constants (an epsilon the converter quantized), not
  # activations with a batch axis.
  details = [d for d in interp.get_tensor_details()
             if d["dtype"] in (np.int8, np.uint8)
             and d["quantization"][0] > 0 and len(d["shape"]) > 0]
  values = {d["name"]: [] for d in details}
  for i in range(len(inputs[0])):
    feed_sample(interp, in_details, inputs, i)
    interp.invoke()
    for d in details:
      scale, zero = d["quantization"]
      q = interp.get_tensor(d["index"]).astype(np.float64)
      values[d["name"]].append((q - zero) * scale)
  return {d["name"]: (np.concatenate(values[d["name"]]),
                      (float(d["quantization"][0]),
                       _int8_zero(d["quantization"][1], d["dtype"]),
                       tuple(d["shape"][1:])))
          for d in details}


def _int8_zero(zero, dtype):
  """A zero point in int8 terms (a uint8 grid's zero point less 128), as
  _grid gives the QAT model's."""
  return float(zero) - (128.0 if np.dtype(dtype) == np.uint8 else 0.0)


# ---- onnxruntime ---------------------------------------------------------


def _onnx_quantized_outputs(path):
  """The ONNX model with every QuantizeLinear output added as a graph
  output, and {output name: (scale, zero)}."""
  import onnx  # pylint: disable=import-outside-toplevel
  from onnx import numpy_helper  # pylint: disable=import-outside-toplevel
  proto = onnx.load(os.fspath(path))
  graph = proto.graph
  constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
  for node in graph.node:
    if node.op_type == "Constant":
      constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
  existing = {o.name for o in graph.output}
  grids = {}
  for node in graph.node:
    if node.op_type != "QuantizeLinear" or len(node.input) < 3:
      continue
    scale = constants.get(node.input[1])
    zero = constants.get(node.input[2])
    if scale is None or zero is None or np.size(scale) != 1:
      continue
    name = node.output[0]
    grids[name] = (float(np.ravel(scale)[0]), float(np.ravel(zero)[0]),
                   zero.dtype)
    if name not in existing:
      graph.output.append(onnx.helper.make_tensor_value_info(
          name, onnx.helper.np_dtype_to_tensor_dtype(zero.dtype), None))
  return proto, grids


def _onnx_tensors(proto, grids, inputs, level):
  sess = ort_runner.session(proto.SerializeToString(), level)
  names = list(grids)
  got = sess.run(names, ort_runner.feed_of(sess, inputs))
  found = {}
  for name, v in zip(names, got):
    scale, zero, dtype = grids[name]
    found[name] = ((v.astype(np.float64) - zero) * scale,
                   (scale, _int8_zero(zero, dtype), tuple(v.shape[1:])))
  return found


# ---- pairing -------------------------------------------------------------


def _in_keras_layout(values, runtime_shape, shape):
  """The runtime's values in the Keras tensor's layout, every way they can
  be: as they are, or channels moved last where the runtime holds them first
  (tf2onnx runs convolutions in NCHW; where H, W and C are equal both fit)."""
  if values is None:
    return []
  runtime_shape, shape = tuple(runtime_shape), tuple(shape)
  layouts = []
  if runtime_shape == shape:
    layouts.append(values)
  if len(shape) >= 2 and runtime_shape == (shape[-1], *shape[:-1]):
    layouts.append(np.moveaxis(values, 1, -1))
  return layouts


def _pair(shape, scale, zero, keras_values, runtime, taken):
  """(name, values in the Keras layout) of the runtime tensor with this
  tensor's shape and grid that is closest to the Keras values (several can
  share a grid: a reshape or a max pooling keeps its input's), or None."""
  best, best_mean = None, None
  for rname, (values, (rscale, rzero, rshape)) in runtime.items():
    if rname in taken:
      continue
    if abs(rscale - scale) > 1e-4 * scale or abs(rzero - zero) > 1.01:
      continue
    for aligned in _in_keras_layout(values, rshape, shape):
      mean = float(_steps(aligned, keras_values, scale).mean())
      if best is None or mean < best_mean:
        best, best_mean = (rname, aligned), mean
  return best


def _values_and_shape(runtime, name):
  if name not in runtime:
    return None, None
  values, (_, _, shape) = runtime[name]
  return values, shape


def compare(model, filepath, x, print_report=True):
  """Compares an exported model with its QAT model, tensor by tensor.

  Args:
    model: the QAT model (tf_qdq.keras.quantize_model, scheme "int8") that
      was exported.
    filepath: its .tflite or .onnx file (tf_qdq.keras.export).
    x: inputs, batch first (an array, or a list in the model's input order);
      a few dozen samples are enough.
    print_report: print the table (`Comparison.table()`).

  Returns:
    A Comparison: per int8 tensor of the QAT model, in graph order, the max
    and mean |diff| in that tensor's steps and the cosine similarity between
    the QAT model and the runtime, beside the runtime's own noise on that
    tensor; `first_parting` is the first tensor where the difference exceeds
    the noise.
  """
  if not isinstance(model, keras.Model):
    raise TypeError("tf_qdq.keras.compare takes a keras.Model, got "
                    f"{type(model).__name__}.")
  check_int8_scheme(model, "compare")
  path = os.fspath(filepath)
  if not os.path.exists(path):
    raise ValueError(f"tf_qdq.keras.compare: no file {path!r}.")
  inputs = [np.asarray(v) for v in _as_list(x)]
  tensors = _quantized_tensors(model)
  # One pass gives every quantized tensor and the model's first output.
  probe = keras.Model(model.inputs,
                      [t for _, t, _ in tensors] + [model.outputs[0]])
  *keras_values, reference = _as_list(probe.predict(
      inputs if len(inputs) > 1 else inputs[0], verbose=0))
  # The final outputs in the steps of the quantizer that writes the first.
  output_quantizer = next((q for _, t, q in tensors if t is model.outputs[0]),
                          tensors[-1][2] if tensors else None)
  last_scale = _grid(output_quantizer)[0] if output_quantizer else 1.0

  if path.endswith(".tflite"):
    from ai_edge_litert import interpreter as litert  # pylint: disable=import-outside-toplevel
    types = litert.OpResolverType
    runtime = _litert_tensors(path, inputs,
                              types.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    other = _litert_tensors(path, inputs, types.BUILTIN_REF)
    label = "LiteRT built-in kernels", "its reference kernels"
    finals = {"XNNPACK": run_litert(path, inputs),
              "reference kernels": run_litert(path, inputs,
                                              reference_kernels=True)}
  elif path.endswith(".onnx"):
    proto, grids = _onnx_quantized_outputs(path)
    runtime = _onnx_tensors(proto, grids, inputs, "disable_all")
    other = _onnx_tensors(proto, grids, inputs, "default")
    label = ("onnxruntime, ORT_DISABLE_ALL",
             "its default optimizations")
    both = ort_runner.run_both_levels(path, inputs)
    finals = {"default optimizations": both["default"],
              "ORT_DISABLE_ALL": both["disable_all"]}
  else:
    raise ValueError("tf_qdq.keras.compare: the file must be a .tflite or an "
                     f".onnx export, got {path!r}.")

  rows, taken = [], set()
  for (name, tensor, quantizer), values in zip(tensors, keras_values):
    scale, zero = _grid(quantizer)
    shape = tuple(tensor.shape[1:])
    paired = _pair(shape, scale, zero, values, runtime, taken)
    row = TensorComparison(name=name, shape=shape, scale=scale,
                           runtime_name=paired and paired[0])
    if paired is not None:
      rname, got = paired
      taken.add(rname)
      diff = _steps(got, values, scale)
      row.max_steps, row.mean_steps = float(diff.max()), float(diff.mean())
      row.cosine = _cosine(got, values)
      # The other kernel set's tensor in the layout closest to this one's.
      layouts = _in_keras_layout(*_values_and_shape(other, rname), shape)
      if layouts:
        noise = min((_steps(v, got, scale) for v in layouts),
                    key=lambda d: d.mean())
        row.noise_max_steps = float(noise.max())
        row.noise_mean_steps = float(noise.mean())
    rows.append(row)
  outputs = {}
  for key, values in finals.items():
    diff = _steps(values, reference, last_scale)
    outputs[key] = (float(diff.max()), float(diff.mean()))
  result = Comparison(runtime=label[0], noise_label=f"{label[0]} vs {label[1]}",
                      tensors=rows, outputs=outputs)
  if print_report:
    print(result.table())
  return result
