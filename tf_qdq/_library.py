"""Loads the tf-qdq op library into TensorFlow, once.

Custom ops are bound to the ABI of the TensorFlow they were compiled against, so
the loader checks the version first and explains a mismatch instead of letting
TensorFlow's opaque loader error through.
"""
import os

import tensorflow as tf

LIBRARY_NAME = "_tf_qdq_ops.so"

# TfQdq>NAME + FLOAT_ONLY_SUFFIX is the float-only twin of each FakeQuant op
# (cc/tf/ops.cc): no type attr, run only by the public functions' eager fast
# path for float32 inputs, so never in a graph.
FLOAT_ONLY_SUFFIX = "Float"
_HERE = os.path.dirname(os.path.abspath(__file__))


def _built_against():
  try:
    from tf_qdq import _build_info  # written when the library is staged
  except ImportError:
    return None
  return _build_info.TF_VERSION


def _major_minor(version):
  return tuple(version.split(".")[:2])


def load_op_library():
  """Returns the module of generated op wrappers, or raises ImportError."""
  path = os.path.join(_HERE, LIBRARY_NAME)
  installed = tf.__version__
  built = _built_against()
  if not os.path.exists(path):
    raise ImportError(
        f"tf_qdq: the op library {path} is missing (TensorFlow {installed} is "
        f"installed; tf_qdq needs TensorFlow {built or '2.21.x'}). Install the "
        "tf-qdq wheel, or build it from a source checkout with `make build`.")
  if built is not None and _major_minor(built) != _major_minor(installed):
    raise ImportError(
        f"tf_qdq was built for TensorFlow {built}, but TensorFlow {installed} "
        "is installed. Custom ops are bound to the TensorFlow ABI they were "
        f"compiled against: install tensorflow=={built} "
        f"(pip install 'tensorflow=={built}'), or rebuild tf_qdq against "
        f"TensorFlow {installed} (./configure.sh && make wheel).")
  try:
    return tf.load_op_library(path)
  except (tf.errors.NotFoundError, OSError) as e:
    raise ImportError(
        f"tf_qdq: TensorFlow {installed} could not load {path} (built for "
        f"TensorFlow {built or 'an unknown version'}). Install the TensorFlow "
        "version it was built for, or rebuild it (./configure.sh && make "
        f"wheel). Loader said: {e}") from e


ops = load_op_library()
