"""Export to a stock SavedModel: TensorFlow built-in ops only, which a
process without tf_qdq (TF Serving, the C++ loader) runs, bit-identical to the
QAT model in inference."""
import os

import tensorflow as tf

from tf_qdq.saved_model_rewrite import tf_qdq_ops_in
from tf_qdq.keras.export.trace import check_int8_scheme
from tf_qdq.keras.export.trace import concrete_function


def export_saved_model(model, filepath, input_signature, verbose):
  check_int8_scheme(model, "tf_saved_model")
  _, concrete = concrete_function(model, input_signature,
                                  simulates_kernels=True)
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
