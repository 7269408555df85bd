"""tf-qdq: TensorFlow's quantize-dequantize and fake-quantization ops as a
custom-op library, bit-exact with TensorFlow 2.21's CPU kernels, with more
dtypes, fixed gradients and deterministic sums.

    import tf_qdq
    y = tf_qdq.quantize_and_dequantize_v2(x, -1.0, 1.0, range_given=True)

Importing loads the op library once (it checks that the installed TensorFlow is
the one it was built for) and registers the gradients.
"""
from tf_qdq import _gradients  # noqa: F401  (registers the gradients)
from tf_qdq._library import ops as raw_ops
from tf_qdq.quantization import *  # noqa: F401,F403
from tf_qdq.quantization import __all__ as _quantization_all

__version__ = "0.1.0"

__all__ = list(_quantization_all) + ["raw_ops"]
