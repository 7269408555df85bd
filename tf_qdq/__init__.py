"""tf-qdq: TensorFlow's quantize-dequantize and fake-quantization ops as a
custom-op library, bit-exact with TensorFlow 2.21's CPU kernels, with more
dtypes, fixed gradients and deterministic sums.

    import tf_qdq
    y = tf_qdq.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True)

Importing loads the op library once (it checks that the installed TensorFlow is
the one it was built for) and registers the gradients. Without TensorFlow only
`tf_qdq.core` (the kernels on NumPy arrays) is usable.
"""
__version__ = "0.1.0"

try:
  import tensorflow as _tf  # pylint: disable=unused-import
except ImportError as _no_tensorflow:
  _tf = None
  _TF_IMPORT_ERROR = _no_tensorflow

if _tf is None:
  __all__ = []

  def __getattr__(name):
    raise ImportError(
        f"tf_qdq.{name} needs TensorFlow 2.21 (pip install "
        "tensorflow==2.21.0), "
        f"which could not be imported: {_TF_IMPORT_ERROR}. tf_qdq.core works "
        "without it.")
else:
  from tf_qdq import _gradients  # noqa: F401  (registers the gradients)
  from tf_qdq._library import ops as raw_ops
  from tf_qdq.quantization import *  # noqa: F401,F403
  from tf_qdq.quantization import __all__ as _quantization_all

  __all__ = list(_quantization_all) + ["raw_ops"]

  def __getattr__(name):
    # tf_qdq.keras imports Keras, which `import tf_qdq` should not pay for.
    # `import tf_qdq.keras` (needed before loading a .keras file) or the first
    # access to tf_qdq.keras loads it.
    if name == "keras":
      import importlib  # pylint: disable=import-outside-toplevel
      return importlib.import_module("tf_qdq.keras")
    raise AttributeError(f"module 'tf_qdq' has no attribute {name!r}")
