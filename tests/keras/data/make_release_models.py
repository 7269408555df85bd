"""Writes the .keras files that tests/keras/test_saved_model_keras.py loads as
files "saved by the current release": run once, with the release whose files
must keep loading (they were written by tf-qdq 0.1.0 before the Python
package moved into subpackages), from the repository root:

    .venv/bin/python tests/keras/data/make_release_models.py

Each file comes with the outputs the model gave when saved (.npz), for a fixed
input, so the test checks that the loaded model computes the same bits.
"""
import os

import keras
import numpy as np

import tf_qdq
import tf_qdq.keras as qk

HERE = os.path.dirname(os.path.abspath(__file__))


def _float_model():
  x = inputs = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(x)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  x = keras.layers.Dense(5)(x)
  return keras.Model(inputs, keras.layers.Softmax()(x))


def _op_layers_model():
  x = inputs = keras.Input((6,))
  x = qk.FakeQuant(num_bits=6, name="fq")(x)
  x = qk.QuantizeDequantize(num_bits=5, name="qdq")(x)
  return keras.Model(inputs, keras.layers.Dense(3)(x))


def main():
  keras.utils.set_random_seed(7)
  rng = np.random.default_rng(7)
  x = rng.normal(size=(16, 8, 8, 3)).astype(np.float32)
  models = {}
  float_model = _float_model()
  int8 = qk.quantize_model(float_model, verbose=False)
  int8.compile("sgd", "mse")
  int8.fit(x, rng.normal(size=(16, 5)).astype(np.float32), epochs=1,
           verbose=0)
  models["int8"] = (int8, x)
  symmetric = qk.quantize_model(float_model, scheme="symmetric_qdq",
                                verbose=False)
  symmetric(x, training=True)
  models["symmetric_qdq"] = (symmetric, x)
  ops = _op_layers_model()
  x6 = rng.normal(size=(16, 6)).astype(np.float32)
  ops(x6, training=True)
  models["op_layers"] = (ops, x6)
  for name, (model, inputs) in models.items():
    model.save(os.path.join(HERE, f"release_{name}.keras"))
    np.savez(os.path.join(HERE, f"release_{name}.npz"), x=inputs,
             y=model(inputs, training=False).numpy())
    print(f"wrote release_{name}.keras (tf_qdq {tf_qdq.__version__})")


if __name__ == "__main__":
  main()
