"""Export to LiteRT: TF's TFLiteConverter on the export-mode trace, fully
int8; and `run_litert`, which runs a .tflite file one sample at a time."""
import os
import warnings

import numpy as np
import tensorflow as tf

from tf_qdq._tf_internal import convert_variables_to_constants_v2
from tf_qdq.keras import registry
from tf_qdq.keras.export.trace import all_layers
from tf_qdq.keras.export.trace import check_int8_scheme
from tf_qdq.keras.export.trace import concrete_function
from tf_qdq.keras.int8.layers import QuantizedLayer


def _low_bit_weights(model):
  """(QuantizedLayer name, kernel attribute) of the kernels with fewer than
  8 weight bits whose grid LiteRT keeps (registry: Kernel.keeps_low_bits,
  per channel), and a warning naming the others."""
  kept, lost = [], []
  for layer in all_layers(model):
    if not isinstance(layer, QuantizedLayer) or layer.num_bits == 8:
      continue
    for spec in registry.support_for(layer.layer).kernels:
      if layer.per_channel and spec.keeps_low_bits(layer.layer):
        kept.append((layer.name, spec.attribute))
      else:
        lost.append(f"{layer.name} ({type(layer.layer).__name__} "
                    f"{spec.attribute}, {layer.num_bits} bits)")
  if lost:
    warnings.warn(
        "tf_qdq.keras.export(format='litert'): " + ", ".join(lost) +
        ": LiteRT has no kernel for a sub-8-bit grid on this layer type, so "
        "its weights are stored on an 8-bit scale (each weight moves by at "
        "most half an int8 step from the QAT value).", stacklevel=4)
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


def export_litert(model, filepath, input_signature, verbose,
                   inference_input_type=None, inference_output_type=None,
                   allow_float_ops=False, **converter_options):
  check_int8_scheme(model, "litert")
  kept = _low_bit_weights(model)
  serve, concrete = concrete_function(model, input_signature, kept)
  # Every variable frozen: the layers the scheme leaves in float (an
  # allow_float_ops island) must not ship as READ_VARIABLE ops.
  frozen = convert_variables_to_constants_v2(concrete)
  converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
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
    warnings.warn(message + " Their weights are frozen into the file, and "
                  "the converter may store them as int8 (weight-only), a "
                  "rounding the QAT model does not simulate.", stacklevel=3)
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


def _quantized(detail):
  """Whether a LiteRT input/output is a quantized tensor (an integer type
  with a scale), as opposed to float or plain integers such as token ids."""
  scale, _ = detail["quantization"]
  return (detail["dtype"] in (np.int8, np.uint8, np.int16) and scale > 0)


def feed_sample(interp, in_details, inputs, i):
  """Sets sample i of each input (batch first), quantized with the input's
  own parameters where it is a quantized tensor."""
  for d, x in zip(in_details, inputs):
    sample = np.asarray(x[i:i + 1])
    if _quantized(d):
      scale, zero = d["quantization"]
      info = np.iinfo(d["dtype"])
      sample = np.clip(np.round(sample / scale) + zero, info.min, info.max)
    interp.set_tensor(d["index"], sample.astype(d["dtype"]))


def run_litert(filepath, inputs, reference_kernels=False, num_threads=None):
  """Runs a .tflite model on `inputs` (one array, a list in the .tflite's
  input order, or a dict by input name; batch first) one sample at a time,
  quantizing int8 inputs and dequantizing int8 outputs with the model's own
  parameters (integer inputs without a scale, such as token ids, pass as
  they are); returns the outputs (an array, or a list for several
  outputs). `reference_kernels`: TFLite's reference kernels
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
    feed_sample(interp, in_details, inputs, i)
    interp.invoke()
    for r, d in zip(results, out_details):
      y = interp.get_tensor(d["index"])
      if _quantized(d):
        scale, zero = d["quantization"]
        y = (y.astype(np.float32) - zero) * scale
      r.append(y)
  outs = [np.concatenate(r) for r in results]
  return outs[0] if len(outs) == 1 else outs
