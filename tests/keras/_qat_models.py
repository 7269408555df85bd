"""Small float models of the architectures QAT users ship (MobileNetV2-style,
ResNet-style, Conv1D, MLP, Concatenate, Xception-style, MobileNetV3-style
with keras.ops nodes), and the helpers the export tests
share: a QAT copy trained briefly so that every range and BN statistic is
real, and the agreement of a runtime's outputs with the QAT model's."""
import keras
import numpy as np

import tf_qdq.keras as qk

L = keras.layers


def mobilenet_v2_style():
  x = keras.Input((16, 16, 3))
  y = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
  y = L.BatchNormalization()(y)
  y = L.ReLU(6.0)(y)
  for expand in (2, 3):  # inverted residual blocks
    h = L.Conv2D(8 * expand, 1, use_bias=False)(y)
    h = L.BatchNormalization()(h)
    h = L.ReLU(6.0)(h)
    h = L.DepthwiseConv2D(3, padding="same", use_bias=False)(h)
    h = L.BatchNormalization()(h)
    h = L.ReLU(6.0)(h)
    h = L.Conv2D(8, 1, use_bias=False)(h)
    h = L.BatchNormalization()(h)
    y = L.Add()([y, h])
  y = L.GlobalAveragePooling2D()(y)
  return keras.Model(x, L.Dense(10)(y), name="mobilenet_v2_style")


def resnet_style():
  x = keras.Input((16, 16, 3))
  y = L.Conv2D(8, 3, padding="same")(x)
  y = L.BatchNormalization()(y)
  y = L.Activation("relu")(y)
  y = L.MaxPooling2D()(y)
  for filters in (8, 16):
    shortcut = y if filters == 8 else L.Conv2D(filters, 1)(y)
    h = L.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)
    h = L.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    h = L.BatchNormalization()(h)
    y = L.ReLU()(L.Add()([shortcut, h]))
  y = L.AveragePooling2D(2)(y)
  y = L.Flatten()(y)
  return keras.Model(x, L.Dense(10, activation="softmax")(y),
                     name="resnet_style")


def conv1d_net():
  x = keras.Input((32, 4))
  y = L.Conv1D(8, 5, padding="same", activation="relu")(x)
  y = L.Conv1D(8, 3, use_bias=False)(y)
  y = L.BatchNormalization()(y)
  y = L.ReLU()(y)
  y = L.GlobalAveragePooling1D()(y)
  return keras.Model(x, L.Dense(10)(y), name="conv1d_net")


def mlp():
  x = keras.Input((20,))
  y = L.Dense(32, activation="relu")(x)
  y = L.Dense(32, use_bias=False)(y)
  y = L.BatchNormalization()(y)
  y = L.ReLU(6.0)(y)
  y = L.Dropout(0.1)(y)
  return keras.Model(x, L.Dense(10)(y), name="mlp")


def concatenate_net():
  x = keras.Input((12, 12, 3))
  a = L.Conv2D(6, 3, padding="same", activation="relu")(x)
  b = L.Conv2D(4, 1, activation="relu6")(x)
  c = L.Conv2DTranspose(4, 3, strides=1, padding="same")(x)
  y = L.Concatenate()([a, b, c])
  y = L.Conv2D(8, 3, padding="same", activation="relu")(y)
  y = L.GlobalAveragePooling2D()(y)
  return keras.Model(x, L.Dense(10)(y), name="concatenate_net")


def xception_style():
  """SeparableConv2D (one registry entry, two kernels): with BN and ReLU
  folded, with its own activation and bias, and in a residual block."""
  x = keras.Input((16, 16, 3))
  y = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
  y = L.BatchNormalization()(y)
  y = L.ReLU()(y)
  h = L.SeparableConv2D(16, 3, padding="same", use_bias=False)(y)
  h = L.BatchNormalization()(h)
  h = L.ReLU()(h)
  h = L.SeparableConv2D(16, 3, padding="same", depth_multiplier=2,
                        activation="relu")(h)
  y = L.Add()([L.Conv2D(16, 1)(y), h])
  y = L.MaxPooling2D()(y)
  y = L.GlobalAveragePooling2D()(y)
  return keras.Model(x, L.Dense(10)(y), name="xception_style")


def mobilenet_v3_style():
  """keras.ops nodes, not layers: MobileNetV3's hard-sigmoid written as
  `ReLU(6)(x + 3) * (1 / 6)`, and ops that reshape, slice, concatenate,
  activate and average."""
  x = keras.Input((16, 16, 3))
  y = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
  y = L.BatchNormalization()(y)
  y = L.Multiply()([y, L.ReLU(6.0)(y + 3.0) * (1.0 / 6.0)])  # hard-swish
  h = keras.ops.relu(keras.ops.concatenate([y, L.Conv2D(4, 1)(y)], axis=-1))
  h = keras.ops.reshape(h, (-1, 8 * 8, 12))[:, ::2, :]
  return keras.Model(x, L.Dense(10)(keras.ops.mean(h, axis=1)),
                     name="mobilenet_v3_style")


def resnet_v2_style():
  """Pre-activation blocks (ResNetV2): BatchNormalization and ReLU before
  each convolution, after an Add, so no Conv precedes them; a 2x2 average
  pooling, which keeps its input's scale."""
  x = keras.Input((16, 16, 3))
  y = L.Conv2D(8, 3, strides=2, padding="same")(x)
  for filters in (8, 16):
    h = L.ReLU()(L.BatchNormalization()(y))
    shortcut = y if filters == 8 else L.Conv2D(filters, 1)(h)
    h = L.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    h = L.ReLU()(L.BatchNormalization()(h))
    h = L.Conv2D(filters, 3, padding="same")(h)
    y = L.Add()([shortcut, h])
  y = L.ReLU()(L.BatchNormalization()(y))
  y = L.Flatten()(L.AveragePooling2D(2)(y))
  return keras.Model(x, L.Dense(10)(y), name="resnet_v2_style")


def densenet_style():
  """DenseNet: BN-ReLU-Conv layers whose outputs are concatenated, and a
  transition of BN-ReLU-Conv-AveragePooling2D."""
  x = keras.Input((16, 16, 3))
  y = L.Conv2D(8, 3, padding="same", use_bias=False)(x)
  y = L.ReLU()(L.BatchNormalization()(y))
  for _ in range(2):
    h = L.ReLU()(L.BatchNormalization()(y))
    h = L.Conv2D(8, 1, use_bias=False)(h)
    h = L.ReLU()(L.BatchNormalization()(h))
    h = L.Conv2D(4, 3, padding="same", use_bias=False)(h)
    y = L.Concatenate()([y, h])
  y = L.ReLU()(L.BatchNormalization()(y))
  y = L.AveragePooling2D(2, strides=2)(L.Conv2D(8, 1, use_bias=False)(y))
  y = L.ReLU()(L.BatchNormalization()(y))
  return keras.Model(x, L.Dense(10)(L.GlobalAveragePooling2D()(y)),
                     name="densenet_style")


def efficientnet_style():
  """EfficientNet: Rescaling and Normalization on the raw input, swish
  after each BN, a squeeze-and-excitation gate (sigmoid, Multiply)."""
  x = keras.Input((16, 16, 3))
  y = L.Rescaling(1.0 / 4.0)(x)
  y = L.Normalization(mean=[0.1, -0.2, 0.3], variance=[0.5, 1.0, 2.0])(y)
  y = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(y)
  y = L.Activation("swish")(L.BatchNormalization()(y))
  h = L.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
  h = L.Activation("swish")(L.BatchNormalization()(h))
  gate = L.GlobalAveragePooling2D(keepdims=True)(h)
  gate = L.Conv2D(4, 1, activation="swish")(gate)
  gate = L.Conv2D(8, 1, activation="sigmoid")(gate)
  h = L.Multiply()([h, gate])
  h = L.BatchNormalization()(L.Conv2D(8, 1, use_bias=False)(h))
  y = L.Add()([y, h])
  return keras.Model(x, L.Dense(10)(L.GlobalAveragePooling2D()(y)),
                     name="efficientnet_style")


def activations_net():
  """The activations and resampling layers TFLite runs in int8: LeakyReLU,
  PReLU, tanh, hard-sigmoid, hard-swish, bilinear upsampling, a 3x3
  stride-1 average pooling, Resizing. (GELU and grouped convolution ship to
  LiteRT but not through tf2onnx: test_export has them apart.)"""
  x = keras.Input((8, 8, 4))
  y = L.Conv2D(8, 3, padding="same")(x)
  y = L.LeakyReLU(0.1)(y)
  y = L.PReLU(shared_axes=[1, 2])(L.Conv2D(8, 1)(y))
  y = L.Conv2D(8, 3, padding="same", activation="tanh")(y)
  y = L.UpSampling2D(interpolation="bilinear")(y)
  y = L.Conv2D(8, 1, activation="hard_sigmoid")(y)
  y = L.AveragePooling2D(3, strides=1, padding="same")(y)
  y = L.Conv2D(8, 3, strides=2, padding="same", activation="hard_swish")(y)
  y = L.Resizing(6, 6)(y)
  return keras.Model(x, L.Dense(10)(L.GlobalAveragePooling2D()(y)),
                     name="activations_net")


def convnext_style():
  """ConvNeXt: a patchify stem and LayerNormalization over the channels of
  NHWC tensors, a 7x7 depthwise convolution, pointwise Dense layers on the
  4D tensor, a residual Add, and a final LayerNormalization before the
  head."""
  x = keras.Input((16, 16, 3))
  y = L.LayerNormalization(epsilon=1e-6)(L.Conv2D(16, 4, strides=4)(x))
  h = L.DepthwiseConv2D(7, padding="same")(y)
  h = L.LayerNormalization(epsilon=1e-6)(h)
  h = L.Dense(32, activation="relu")(h)
  h = L.Dense(16)(h)
  y = L.Add()([y, h])
  y = L.LayerNormalization(epsilon=1e-6)(L.GlobalAveragePooling2D()(y)[
      :, None, :])
  return keras.Model(x, L.Dense(10)(L.Flatten()(y)), name="convnext_style")


ARCHITECTURES = {f.__name__: f for f in (
    mobilenet_v2_style, resnet_style, conv1d_net, mlp, concatenate_net,
    xception_style, mobilenet_v3_style, resnet_v2_style, densenet_style,
    efficientnet_style, activations_net, convnext_style)}


def data(model, n, seed):
  rng = np.random.default_rng(seed)
  shape = (n, *model.inputs[0].shape[1:])
  x = rng.normal(size=shape).astype(np.float32)
  y = rng.integers(0, 10, size=n)
  return x, y


def trained_qat(name, num_bits=8, seed=0):
  """A float model trained a little, then its QAT copy fine-tuned, so that
  ranges, BN statistics and weights have moved from their initial values."""
  keras.utils.set_random_seed(seed)
  model = ARCHITECTURES[name]()
  x, y = data(model, 256, seed)
  probabilities = model.layers[-1].activation is keras.activations.softmax
  loss = keras.losses.SparseCategoricalCrossentropy(
      from_logits=not probabilities)
  model.compile(keras.optimizers.Adam(0.01), loss)
  model.fit(x, y, epochs=2, batch_size=32, verbose=0)
  qat = qk.quantize_model(model, num_bits=num_bits, verbose=False)
  qat.compile(keras.optimizers.Adam(0.001), loss)
  qat.fit(x, y, epochs=2, batch_size=32, verbose=0)
  return model, qat


def output_step(qat):
  """The output grid step of the QAT model (its last quantizer's scale)."""
  last = qat.layers[-1]
  quantizer = last.output_quantizer if isinstance(last, qk.QuantizedLayer) \
      else last
  mn, mx = quantizer.range()
  return (mx - mn) / (2 ** quantizer.num_bits - 1)


def agreement(reference, outputs, step):
  """(max |diff| in output steps, fraction of elements within one step,
  argmax agreement on samples whose top-2 margin exceeds two steps, how many
  such samples)."""
  diff = np.abs(np.asarray(outputs, np.float64) - reference) / step
  top2 = np.sort(reference, axis=1)[:, -2:]
  clear = (top2[:, 1] - top2[:, 0]) > 2 * step
  same = reference.argmax(1) == np.asarray(outputs).argmax(1)
  # "Within one step" with a thousandth of a step to spare: a runtime
  # dequantizes (q - zero) * scale in float32, so a one-step difference can
  # read 1.00001 steps against the QAT model's grid values (LiteRT's
  # reference kernels on the Xception-style net: 82% "within one" at 1e-6
  # where XNNPACK against the same kernels, both dequantized alike, had 94%).
  return (float(diff.max()), float(np.mean(diff <= 1.0 + 1e-3)),
          float(np.mean(same[clear])) if clear.any() else 1.0,
          int(clear.sum()))
