"""QuantizedModel, the model the int8 scheme's quantize_model returns. It sits
above both the rebuild (tf_qdq.keras.int8) and the exporters
(tf_qdq.keras.export), so that `model.export(...)` ships the int8 model."""
import logging

import keras

from tf_qdq.keras.export import FORMATS
from tf_qdq.keras.export import export as export_model
from tf_qdq.keras.common import PACKAGE
from tf_qdq.keras.int8.rebuild import rebuild

_logger = logging.getLogger("tf_qdq.keras")


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantizedModel(keras.Model):
  """The functional model quantize_model returns (int8 scheme). It is a
  keras.Model in every way but one: `export` ships the int8 model through
  tf_qdq.keras.export for "litert"/"tflite", "onnx" and "tf_saved_model"
  (Keras' own export would trace the training-time graph, whose tf_qdq ops
  no converter reads). Other formats go to keras.Model.export."""

  def export(self, filepath, format="tf_saved_model", verbose=None,  # pylint: disable=redefined-builtin
             input_signature=None, **kwargs):
    if format not in FORMATS:
      return super().export(filepath, format=format, verbose=verbose,
                            input_signature=input_signature, **kwargs)
    return export_model(self, filepath, format=format,
                        verbose=True if verbose is None else verbose,
                        input_signature=input_signature, **kwargs)


def quantize_model_int8(model, num_bits=8, per_channel_weights=True,
                        freeze_bn_delay=None, symmetric_activations=False,
                        verbose=True):
  """The "int8" scheme of tf_qdq.keras.quantize_model."""
  inputs, outputs, report, copy_weights = rebuild(
      model, num_bits, per_channel_weights, freeze_bn_delay,
      symmetric_activations)
  qat = QuantizedModel(inputs if len(inputs) > 1 else inputs[0],
                       outputs if len(outputs) > 1 else outputs[0],
                       name=f"{model.name}_qat")
  copy_weights()
  qat.quantized_layers = tuple(report.quantized)
  qat.folded_batch_norms = tuple(report.folded)
  qat.unquantized_layers = tuple(name for name, _ in report.warnings
                                 if name not in report.quantized)
  qat.quantization_warnings = tuple(report.warnings)
  message = (f"tf_qdq.keras.quantize_model (int8): {len(report.quantized)} "
             f"Conv/Dense layers with {num_bits}-bit weights, "
             f"{len(report.folded)} BatchNormalization/affine layers "
             "folded.")
  for name, why in report.warnings:
    message += f"\n  {name}: {why}"
  _logger.info(message)
  if verbose:
    print(message)
  return qat
