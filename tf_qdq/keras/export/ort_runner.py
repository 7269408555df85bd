"""onnxruntime on an exported .onnx file, at its two optimization levels.

* "default" (ORT_ENABLE_ALL): onnxruntime fuses each
  DequantizeLinear -> op -> QuantizeLinear into its integer kernels
  (QLinearConv, QGemm, ...): what users run, and what saturates on x86 CPUs
  without VNNI when weights are full 8-bit int8 (tf_qdq.keras.export.onnx).
* "disable_all" (ORT_DISABLE_ALL): every op runs as the ONNX graph states
  it, in float between QuantizeLinear and DequantizeLinear: the file's own
  semantics.

An export is right when both agree with the QAT model. This module imports
only NumPy and onnxruntime, so it also runs as a script in a process without
TensorFlow (the export tests run it under an emulated CPU):

  python ort_runner.py MODEL.onnx INPUTS.npy OUTPUTS.npz

writes the first output at each level to OUTPUTS.npz, keyed by level.
"""
import os
import sys

import numpy as np

LEVELS = ("default", "disable_all")


def session(model, level="default"):
  """An onnxruntime CPU session of `model` (a path or serialized bytes) at
  `level` (one of LEVELS)."""
  import onnxruntime as ort  # pylint: disable=import-outside-toplevel
  if level not in LEVELS:
    raise ValueError(f"onnxruntime level must be one of {LEVELS}, got "
                     f"{level!r}.")
  options = ort.SessionOptions()
  options.graph_optimization_level = (
      ort.GraphOptimizationLevel.ORT_ENABLE_ALL if level == "default"
      else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
  if not isinstance(model, bytes):
    model = os.fspath(model)
  return ort.InferenceSession(model, options,
                              providers=["CPUExecutionProvider"])


def feed_of(sess, inputs):
  """{input name: array} from one array, a list in the session's input
  order, or a dict by input name."""
  names = [i.name for i in sess.get_inputs()]
  if isinstance(inputs, dict):
    return {name: np.asarray(inputs[name]) for name in names}
  if not isinstance(inputs, (list, tuple)):
    inputs = [inputs]
  if len(inputs) != len(names):
    raise ValueError(f"the ONNX model takes {len(names)} inputs {names}, "
                     f"got {len(inputs)}.")
  return {name: np.asarray(x) for name, x in zip(names, inputs)}


def run_onnx(filepath, inputs, level="default", output_names=None):
  """Runs a .onnx file (or serialized model) on `inputs` (one array, a list
  in the model's input order, or a dict by input name; batch first) in
  onnxruntime on this CPU at `level` ("default": its fused integer kernels;
  "disable_all": the graph's own float semantics). Returns the outputs (an
  array, or a list for several), or those named in `output_names`."""
  sess = session(filepath, level)
  outputs = sess.run(output_names, feed_of(sess, inputs))
  return outputs[0] if len(outputs) == 1 and output_names is None else outputs


def run_both_levels(filepath, inputs):
  """{level: the first output} for each of LEVELS."""
  return {level: np.asarray(_first(run_onnx(filepath, inputs, level)))
          for level in LEVELS}


def _first(outputs):
  return outputs[0] if isinstance(outputs, list) else outputs


def main(argv):
  model, inputs, outputs = argv[1:4]
  np.savez(outputs, **run_both_levels(model, np.load(inputs)))


if __name__ == "__main__":
  # Run as a script, this file's folder heads sys.path, and its onnx.py (the
  # exporter) would shadow the onnx package that onnxruntime may import.
  sys.path = [p for p in sys.path
              if os.path.abspath(p or ".") != os.path.dirname(
                  os.path.abspath(__file__))]
  main(sys.argv)
