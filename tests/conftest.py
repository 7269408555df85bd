"""Shared pytest setup: says which tf_qdq the tests exercise (the installed
wheel under `make test`, the source tree under `python -m pytest` from the
repository root) and on which CPU features they ran."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_report_header(config):
  del config
  import tf_qdq  # pylint: disable=import-outside-toplevel
  try:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf_version = tf.__version__
  except ImportError:  # tests/core/test_core_gpu.py runs without TensorFlow
    tf_version = "not installed"
  from _onnxruntime import cpu_summary  # pylint: disable=import-outside-toplevel
  return [f"tf_qdq {tf_qdq.__version__} from {os.path.dirname(tf_qdq.__file__)}; "
          f"TensorFlow {tf_version}", cpu_summary()]
