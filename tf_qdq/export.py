"""Alias of tf_qdq.saved_model_rewrite, the SavedModel rewriter's former name:

    python -m tf_qdq.export SRC_DIR DST_DIR

runs `python -m tf_qdq.saved_model_rewrite SRC_DIR DST_DIR`, and this module
re-exports that module's public names. New code should use
tf_qdq.saved_model_rewrite. (Keras export is tf_qdq.keras.export.)
"""
import sys

from tf_qdq.saved_model_rewrite import main, rewrite_saved_model, tf_qdq_ops_in

# saved_model_rewrite's __all__ (tests/ops/test_export_rewrite.py checks it).
__all__ = ["main", "rewrite_saved_model", "tf_qdq_ops_in"]

if __name__ == "__main__":
  sys.exit(main(prog="python -m tf_qdq.export"))
