"""tf_qdq.keras.export: a QAT model of the "int8" scheme as a deployable
artifact, through the runtimes' own converters.

* "litert" (alias "tflite"): TF's TFLiteConverter, fully int8.
* "tf_saved_model": a SavedModel of TensorFlow built-in ops only, which a
  process without tf_qdq (TF Serving, the C++ loader) runs, bit-identical to
  the QAT model in inference.
* "onnx": tf2onnx, QuantizeLinear/DequantizeLinear around every activation,
  weights as int8 initializers with per-channel DequantizeLinear.

All three trace the model in inference mode inside `_keras_activations.exporting()`:
ranges and quantized (BN-folded) kernels are constants, and the quantizers
are TF's FakeQuantWithMinMaxVars, which the converters read.
"""
import logging
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from tf_qdq import _keras_activations as _activations
from tf_qdq import _keras_int8 as _int8
from tf_qdq import _keras_layers as _legacy
from tf_qdq import _keras_symmetric
from tf_qdq.export import tf_qdq_ops_in

_logger = logging.getLogger("tf_qdq.keras")

FORMATS = ("litert", "tflite", "tf_saved_model", "onnx")


def _all_layers(model):
  for layer in model._flatten_layers(include_self=False, recursive=True):  # pylint: disable=protected-access
    yield layer


def _check_int8_scheme(model, format):  # pylint: disable=redefined-builtin
  legacy = [layer.name for layer in _all_layers(model) if isinstance(
      layer, (_legacy.FakeQuant, _legacy.QuantizeDequantize,
              _keras_symmetric.QuantizeWrapper))]
  if legacy:
    raise ValueError(
        f"tf_qdq.keras.export(format={format!r}): layers {legacy} belong to "
        "the 'symmetric_qdq' scheme (or are raw FakeQuant/QuantizeDequantize "
        "layers), which no int8 runtime computes. Quantize the float model "
        "with tf_qdq.keras.quantize_model(model) (scheme='int8') and train "
        "that copy.")
  quantizers = [layer for layer in _all_layers(model)
                if isinstance(layer, _activations.ActivationQuantizer)]
  if not quantizers:
    raise ValueError(
        f"tf_qdq.keras.export(format={format!r}): the model has no "
        "tf_qdq quantizer; make a QAT copy with "
        "tf_qdq.keras.quantize_model(model) first.")
  if format != "tf_saved_model":
    ranges = [(q.name, q.range()) for q in quantizers]
    empty = [f"{name} {r}" for name, r in ranges if not r[1] > r[0]]
    if empty:
      raise ValueError(
          f"tf_qdq.keras.export(format={format!r}): quantizers with an empty "
          f"range: {', '.join(empty)}. An int8 tensor needs a scale > 0; the "
          "layer before saw only zeros in training (a dead ReLU?). Train on "
          "real data, or give that quantizer a range (init_min/init_max).")
  stale = [q.name for q in quantizers if not q.is_calibrated]
  if stale:
    warnings.warn(
        f"tf_qdq.keras.export: activation quantizers {stale} have seen no "
        "training batch and still hold their initial range; train (fit) the "
        "QAT model before exporting it.", stacklevel=3)


def _input_signature(model, input_signature):
  if input_signature is not None:
    return input_signature
  return [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]


def _concrete_function(model, input_signature, fake_quant_weights=()):
  signature = _input_signature(model, input_signature)

  @tf.function(input_signature=signature, autograph=False)
  def serve(*inputs):
    return model(inputs[0] if len(inputs) == 1 else list(inputs),
                 training=False)

  with _activations.exporting(fake_quant_weights):
    return serve, serve.get_concrete_function()


# ---- LiteRT ------------------------------------------------------------------

def _low_bit_weights(model):
  """QuantizedLayers with fewer than 8 weight bits: those whose grid TFLite
  keeps (Conv2D, per channel), and the rest with a warning naming them."""
  kept, lost = [], []
  for layer in _all_layers(model):
    if isinstance(layer, _int8.QuantizedLayer) and layer.num_bits < 8:
      if (type(layer.layer) is keras.layers.Conv2D and layer.per_channel  # pylint: disable=unidiomatic-typecheck
          and layer.layer.groups == 1):
        kept.append(layer.name)
      else:
        lost.append(f"{layer.name} ({type(layer.layer).__name__}, "
                    f"{layer.num_bits} bits)")
  if lost:
    warnings.warn(
        "tf_qdq.keras.export(format='litert'): " + ", ".join(lost) +
        ": LiteRT has no kernel for a sub-8-bit grid on this layer type, so "
        "its weights are stored on an 8-bit scale (each weight moves by at "
        "most half an int8 step from the QAT value).", stacklevel=3)
  return kept


def _dtype_option(value, what):
  if value is None:
    return None
  dtype = tf.as_dtype(value)
  if dtype not in (tf.float32, tf.int8, tf.uint8):
    raise ValueError(f"tf_qdq.keras.export: {what} must be float32, int8 or "
                     f"uint8, got {value!r}.")
  return dtype


def litert_float_ops(flatbuffer):
  """The ops of a .tflite model that compute in float (other than the
  QUANTIZE/DEQUANTIZE at its float inputs and outputs): [(op, output
  tensor names)]."""
  from ai_edge_litert import interpreter as litert  # pylint: disable=import-outside-toplevel
  interp = litert.Interpreter(model_content=flatbuffer)
  details = {d["index"]: d for d in interp.get_tensor_details()}
  floating = []
  for op in interp._get_ops_details():  # pylint: disable=protected-access
    if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
      continue
    dtypes = [details[i]["dtype"] for i in op["inputs"] if i >= 0]
    if any(np.issubdtype(d, np.floating) for d in dtypes):
      floating.append((op["op_name"],
                       [details[i]["name"] for i in op["outputs"]]))
  return floating


def _export_litert(model, filepath, input_signature, verbose,
                   inference_input_type=None, inference_output_type=None,
                   allow_float_ops=False, **converter_options):
  _check_int8_scheme(model, "litert")
  kept = _low_bit_weights(model)
  serve, concrete = _concrete_function(model, input_signature, kept)
  converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete],
                                                              model)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  input_type = _dtype_option(inference_input_type, "inference_input_type")
  output_type = _dtype_option(inference_output_type, "inference_output_type")
  if input_type is not None:
    converter.inference_input_type = input_type
  if output_type is not None:
    converter.inference_output_type = output_type
  for key, value in converter_options.items():
    if not hasattr(converter, key):
      raise TypeError(f"tf_qdq.keras.export: unknown LiteRT option {key!r}.")
    setattr(converter, key, value)
  del serve
  with warnings.catch_warnings():
    # "Statistics for quantized inputs were expected": the input quantizer
    # gives them; the converter warns for float inputs all the same.
    warnings.filterwarnings("ignore", message="Statistics for quantized")
    flatbuffer = converter.convert()
  floating = litert_float_ops(flatbuffer)
  if floating:
    listing = "; ".join(f"{op} -> {', '.join(names)}" for op, names in floating)
    message = ("tf_qdq.keras.export(format='litert'): these ops run in float, "
               f"not int8: {listing}.")
    if not allow_float_ops:
      raise ValueError(message + " Quantize or replace the layers they come "
                       "from, or pass allow_float_ops=True to ship them in "
                       "float.")
    warnings.warn(message, stacklevel=3)
  with open(filepath, "wb") as f:
    f.write(flatbuffer)
  if verbose:
    print(f"tf_qdq.keras.export: wrote {filepath} ({len(flatbuffer)} bytes, "
          "int8)")
  return filepath


def _input_key(tensor_name, inputs):
  """The key of `inputs` that a LiteRT input tensor (named like
  "serving_default_<name>:0") stands for."""
  for key in inputs:
    if tensor_name in (key, f"serving_default_{key}:0", f"{key}:0"):
      return key
  raise KeyError(f"run_litert: no input for the model's input {tensor_name!r} "
                 f"among {sorted(inputs)}.")


def run_litert(filepath, inputs, reference_kernels=False, num_threads=None):
  """Runs a .tflite model on `inputs` (one array, a list in the .tflite's
  input order, or a dict by input name; batch first) one
  sample at a time, quantizing int8 inputs and dequantizing int8 outputs with
  the model's own parameters; returns the float outputs (an array, or a list
  for several outputs). `reference_kernels`: TFLite's reference kernels
  instead of XNNPACK (the default CPU path)."""
  from ai_edge_litert import interpreter as litert  # pylint: disable=import-outside-toplevel
  resolver = (litert.OpResolverType.BUILTIN_REF if reference_kernels
              else litert.OpResolverType.AUTO)
  interp = litert.Interpreter(model_path=os.fspath(filepath),
                              experimental_op_resolver_type=resolver,
                              num_threads=num_threads)
  in_details = interp.get_input_details()
  out_details = interp.get_output_details()
  if isinstance(inputs, dict):  # by input name, in the model's own order
    inputs = [inputs[_input_key(d["name"], inputs)] for d in in_details]
  inputs = [inputs] if not isinstance(inputs, (list, tuple)) else list(inputs)
  n = len(inputs[0])
  for d, x in zip(in_details, inputs):
    interp.resize_tensor_input(d["index"], [1, *np.shape(x)[1:]])
  interp.allocate_tensors()
  results = [[] for _ in out_details]
  for i in range(n):
    for d, x in zip(in_details, inputs):
      sample = np.asarray(x[i:i + 1])
      if d["dtype"] != np.float32:
        scale, zero = d["quantization"]
        info = np.iinfo(d["dtype"])
        sample = np.clip(np.round(sample / scale) + zero, info.min, info.max)
      interp.set_tensor(d["index"], sample.astype(d["dtype"]))
    interp.invoke()
    for r, d in zip(results, out_details):
      y = interp.get_tensor(d["index"])
      if d["dtype"] != np.float32:
        scale, zero = d["quantization"]
        y = (y.astype(np.float32) - zero) * scale
      r.append(y)
  outs = [np.concatenate(r) for r in results]
  return outs[0] if len(outs) == 1 else outs


# ---- stock SavedModel --------------------------------------------------------

def _export_saved_model(model, filepath, input_signature, verbose):
  _check_int8_scheme(model, "tf_saved_model")
  _, concrete = _concrete_function(model, input_signature)
  module = tf.Module()
  # Layers the scheme leaves in float (e.g. a standalone normalization) may
  # read variables; they travel with the module.
  module.model_variables = [v.value for v in model.weights]
  tf.saved_model.save(module, os.fspath(filepath),
                      signatures={"serving_default": concrete})
  custom = tf_qdq_ops_in(filepath)
  if custom:
    raise AssertionError(f"tf_qdq.keras.export: the SavedModel still holds "
                         f"tf_qdq ops {sorted(custom)}")
  if verbose:
    print(f"tf_qdq.keras.export: wrote {filepath} (SavedModel, TensorFlow "
          "built-in ops only)")
  return filepath


# ---- entry point -------------------------------------------------------------

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
      for every weight. See tf_qdq._keras_onnx.
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
  if format in ("litert", "tflite"):
    return _export_litert(model, filepath, input_signature, verbose, **kwargs)
  if format == "tf_saved_model":
    if kwargs:
      raise TypeError(f"tf_qdq.keras.export(format='tf_saved_model'): "
                      f"unexpected options {sorted(kwargs)}.")
    return _export_saved_model(model, filepath, input_signature, verbose)
  from tf_qdq import _keras_onnx  # pylint: disable=import-outside-toplevel
  _check_int8_scheme(model, "onnx")
  return _keras_onnx.export_onnx(model, filepath, input_signature, verbose,
                                 _concrete_function, **kwargs)
