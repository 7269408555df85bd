"""tf_qdq.keras.export: a QAT model of the "int8" scheme as a deployable
artifact, through the runtimes' own converters.

* "litert" (alias "tflite"): TF's TFLiteConverter, fully int8 (litert.py).
* "tf_saved_model": a SavedModel of TensorFlow built-in ops only, which a
  process without tf_qdq (TF Serving, the C++ loader) runs, bit-identical to
  the QAT model in inference (saved_model.py).
* "onnx": tf2onnx, QuantizeLinear/DequantizeLinear around every activation,
  weights as 8-bit initializers with per-channel DequantizeLinear (onnx.py).

Each traces the model once in inference mode in export mode (trace.py,
tf_qdq.keras.export_mode): ranges and quantized (BN-folded) kernels are
constants, and the quantizers are TF's FakeQuantWithMinMaxVars, which the
converters read.

`run_litert` (litert.py) and `run_onnx` (ort_runner.py) run an exported file
on a batch. `compare` (compare.py) runs an exported file beside its QAT
model, tensor by tensor, against the runtime's own noise.
"""
import keras

from tf_qdq.keras.export.compare import compare
from tf_qdq.keras.export.litert import export_litert
from tf_qdq.keras.export.litert import litert_float_ops
from tf_qdq.keras.export.litert import run_litert
from tf_qdq.keras.export.onnx import export_onnx
from tf_qdq.keras.export.ort_runner import run_onnx
from tf_qdq.keras.export.saved_model import export_saved_model

__all__ = ["EXPORTERS", "FORMATS", "compare", "export", "litert_float_ops",
           "run_litert", "run_onnx"]


def _saved_model(model, filepath, input_signature, verbose, **kwargs):
  if kwargs:
    raise TypeError(f"tf_qdq.keras.export(format='tf_saved_model'): "
                    f"unexpected options {sorted(kwargs)}.")
  return export_saved_model(model, filepath, input_signature, verbose)


# format -> exporter(model, filepath, input_signature, verbose, **options)
EXPORTERS = {
    "litert": export_litert,
    "tflite": export_litert,
    "tf_saved_model": _saved_model,
    "onnx": export_onnx,
}
FORMATS = tuple(EXPORTERS)


def export(model, filepath, format="litert", verbose=True,  # pylint: disable=redefined-builtin
           input_signature=None, **kwargs):
  """Exports a QAT model of the "int8" scheme (tf_qdq.keras.quantize_model)
  for deployment, as keras.Model.export does for float models.

  Args:
    model: the trained QAT model.
    filepath: the .tflite / .onnx file, or the SavedModel directory.
    format: "litert" (or "tflite"): a fully int8 LiteRT model through TF's
      TFLiteConverter; float input and output unless `inference_input_type` /
      `inference_output_type` (tf.int8, tf.uint8) say otherwise, and an error
      naming every op left in float unless `allow_float_ops=True`.
      "tf_saved_model": a SavedModel of TensorFlow built-in ops only
      (signature "serving_default"), for TF Serving and processes without
      tf_qdq; its outputs are bit-identical to `model(x, training=False)`.
      "onnx": through tf2onnx (`opset`, default 13); with
      `symmetric_activations=True` (a model from quantize_model(...,
      symmetric_activations=True)) every QuantizeLinear/DequantizeLinear is
      int8 with zero point 0, as TensorRT requires. `weight_dtype`: "auto"
      (default) stores weights on a grid of 7 bits or fewer as int8 and full
      8-bit grids as uint8 with zero point 128, so that onnxruntime's
      default kernels compute them exactly on x86 CPUs without VNNI too
      (int8 with symmetric activations, with a warning); "int8" or "uint8"
      for every weight. See tf_qdq.keras.export.onnx.
    verbose: print what was written.
    input_signature: tf.TensorSpecs for the inputs (default: the model's
      inputs, batch dimension free).
    **kwargs: the format's options above; for "litert", also any
      TFLiteConverter attribute.
  Returns:
    filepath.
  """
  if format not in FORMATS:
    raise ValueError(f"tf_qdq.keras.export: format must be one of {FORMATS}, "
                     f"got {format!r}.")
  if not isinstance(model, keras.Model):
    raise TypeError("tf_qdq.keras.export takes a keras.Model, got "
                    f"{type(model).__name__}.")
  return EXPORTERS[format](model, filepath, input_signature, verbose,
                           **kwargs)
