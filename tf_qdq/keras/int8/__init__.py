"""The default QAT scheme ("int8"): what TFLite's int8 runtime computes,
simulated in float.

* activations.py: ActivationQuantizer, the per-tensor asymmetric quantizer of
  every int8 tensor, and the fixed output ranges of softmax/sigmoid/tanh;
* layers.py: QuantizedLayer, a Conv/Dense layer with its BatchNormalization
  folded and its activation fused (the spec and the folding maths are in its
  docstring);
* rebuild.py: the graph walk that puts them in place of a float model's
  layers, as tf_qdq.keras.registry says.
"""
from tf_qdq.keras.int8.activations import ActivationQuantizer
from tf_qdq.keras.int8.layers import QuantizedLayer

__all__ = ["ActivationQuantizer", "QuantizedLayer"]
