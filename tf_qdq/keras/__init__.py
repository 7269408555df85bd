"""Keras 3 quantization-aware training (QAT) with tf-qdq's ops, and export to
the runtimes that run int8 models.

    import tf_qdq.keras as qk
    qat = qk.quantize_model(float_model)          # the "int8" scheme
    qat.compile(...); qat.fit(...)                # fine-tune
    qk.export(qat, "model.tflite")                # LiteRT, fully int8
    qat.export("model.tflite", format="litert")   # the same, Keras' spelling
    qk.export(qat, "serving/1", format="tf_saved_model")  # no tf_qdq needed
    qk.export(qat, "model.onnx", format="onnx")
    qk.compare(qat, "model.tflite", x)            # tensor by tensor, in steps

Schemes of `quantize_model`:
* "int8" (default): what TFLite's int8 runtime computes (tf_qdq.keras.int8):
  per-channel symmetric narrow-range weights with BatchNormalization folded,
  asymmetric per-tensor activations where the runtime quantizes them (model
  inputs, each Conv/Dense after its BN and fused ReLU/ReLU6, Add, Concatenate,
  average pooling, activations), constant ranges in inference.
* "symmetric_qdq": tf-qdq 0.1's scheme (tf_qdq.keras.symmetric_qdq):
  fake-quantized kernels and a symmetric QuantizeAndDequantizeV4 on each
  Conv/Dense output; a simulation, not a deployable model.

Which layer types each scheme quantizes, and how, is one table:
tf_qdq.keras.registry.

Layers: `ActivationQuantizer` and `QuantizedLayer` (the int8 scheme),
`FakeQuant` and `QuantizeDequantize` (the ops as layers), `QuantizeWrapper`
(symmetric_qdq). All are registered under the package "tf_qdq", so `.keras`
files round-trip once tf_qdq.keras is imported.

The package, top-down (docs/architecture.md draws it): this module and
model.py (QuantizedModel) above export/ (one module per format, and the shared
trace) and int8/ (the scheme's layers and the graph rebuild); beneath them
symmetric_qdq.py, layers.py (the op layers), and the helpers by concept:
registry.py, kernels.py, ranges.py, export_mode.py, common.py.

XLA. Keras 3 compiles with XLA by default when a GPU is present
(`jit_compile="auto"`), and always with `compile(jit_compile=True)`. The ops
have no XLA kernels; inside an XLA context every tf_qdq function builds an
equivalent composition of TensorFlow ops with the same bits (tf_qdq._xla).

Mixed precision (`mixed_float16`, `mixed_bfloat16`). The ops take half and
bfloat16 natively, so activations are never cast: each layer runs its op in the
compute dtype, and only the range variables are cast when they are read (they
are stored in float32 so that moving-average updates keep float32 precision).
Kernels are fake-quantized in float32 (the master weights), and the wrapped
layer casts the result to the compute dtype as it casts any kernel.
"""
# `export` is both the function (the public API) and the subpackage that
# implements it; the function is bound last, so tf_qdq.keras.export is the
# function. Modules import the subpackage's names with
# `from tf_qdq.keras.export import ...`, which does not depend on that.
from tf_qdq.keras.common import check_num_bits
from tf_qdq.keras.export import compare
from tf_qdq.keras.export import export
from tf_qdq.keras.export import run_litert
from tf_qdq.keras.export import run_onnx
from tf_qdq.keras.int8 import ActivationQuantizer
from tf_qdq.keras.int8 import QuantizedLayer
from tf_qdq.keras.layers import FakeQuant
from tf_qdq.keras.layers import QuantizeDequantize
from tf_qdq.keras.model import QuantizedModel
from tf_qdq.keras.model import quantize_model_int8
from tf_qdq.keras.registry import SCHEMES
from tf_qdq.keras.symmetric_qdq import QuantizeWrapper
from tf_qdq.keras.symmetric_qdq import quantize_model_symmetric_qdq

__all__ = ["ActivationQuantizer", "FakeQuant", "QuantizeDequantize",
           "QuantizeWrapper", "QuantizedLayer", "QuantizedModel", "compare",
           "export", "quantize_model", "run_litert", "run_onnx"]


def quantize_model(model, num_bits=8, per_channel_weights=True, scheme="int8",
                   freeze_bn_delay=None, symmetric_activations=False,
                   verbose=True):
  """Returns a quantization-aware-training copy of `model`, starting from its
  weights (the original is not modified).

  Args:
    model: a built Sequential or functional keras.Model.
    num_bits: of the weights: 2..8 for "int8" (activations are always 8-bit
      there; below 8, export keeps the narrower grid where LiteRT can, and
      warns where it cannot), 2..16 for "symmetric_qdq" (weights and outputs).
    per_channel_weights: one weight range per output channel.
    scheme: "int8" (default: what TFLite's int8 runtime computes) or
      "symmetric_qdq" (tf-qdq 0.1's scheme); see the module docstring.
    freeze_bn_delay: "int8" only: training steps after which folded
      BatchNormalizations stop updating their statistics; None: never.
    symmetric_activations: "int8" only: activation grids with zero point 0
      (scale a/128 on [-a, a*127/128]), for TensorRT-style runtimes and
      export(format="onnx", symmetric_activations=True).
    verbose: print what was quantized and which layers were not.

  The copy has `quantized_layers` and `unquantized_layers` (names of the
  original's layers); the int8 scheme adds `folded_batch_norms` and
  `quantization_warnings` ((layer name, why) pairs).
  """
  if scheme not in SCHEMES:
    raise ValueError(f"quantize_model: scheme must be one of {SCHEMES}, got "
                     f"{scheme!r}.")
  import keras  # pylint: disable=import-outside-toplevel
  if not isinstance(model, keras.Model):
    raise ValueError("quantize_model takes a Sequential or functional Model, "
                     f"got {type(model).__name__}.")
  if not model.built:
    raise ValueError("quantize_model: build the model first (give it an Input "
                     "or call model.build(input_shape)).")
  if scheme == "symmetric_qdq":
    if freeze_bn_delay is not None or symmetric_activations:
      raise ValueError("quantize_model: freeze_bn_delay and "
                       "symmetric_activations belong to the int8 scheme "
                       "(symmetric_qdq does not fold BatchNormalization and "
                       "its outputs are always symmetric).")
    return quantize_model_symmetric_qdq(model, num_bits, per_channel_weights,
                                        verbose)
  num_bits = check_num_bits(
      "quantize_model", num_bits, high=8,
      hint=" for the int8 scheme (int8 weights; scheme='symmetric_qdq' "
      "simulates up to 16)")
  return quantize_model_int8(model, num_bits, per_channel_weights,
                             freeze_bn_delay, bool(symmetric_activations),
                             verbose)
