"""tf_qdq.keras.export: each format run in its real runtime and compared with
the Keras QAT model in inference mode, on held-out data.

* LiteRT (ai_edge_litert), with XNNPACK and with the reference kernels;
* onnxruntime, at its default optimizations and with them off, on this CPU
  and on an emulated AVX2 CPU without VNNI (tests/_onnxruntime.py);
* a fresh Python process that never imports tf_qdq (the stock SavedModel),
  bit for bit.
The agreement printed per model (pytest -s) is what the README reports."""
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_qdq.keras as qk
from tf_qdq.keras.export import litert_float_ops
from tf_qdq.saved_model_rewrite import tf_qdq_ops_in as rewrite_ops_in
import _onnxruntime as _ort
from _qat_models import ARCHITECTURES, agreement, data, output_step, trained_qat

L = keras.layers

pytestmark = pytest.mark.slow  # trains, converts, starts processes

_TRAINED = {}


def _trained(name, num_bits=8):
  key = (name, num_bits)
  if key not in _TRAINED:
    _TRAINED[key] = trained_qat(name, num_bits)
  return _TRAINED[key]


def _held_out(qat):
  x, _ = data(qat, 200, seed=123)
  return x, qat(x, training=False).numpy()


def _ops(path):
  from ai_edge_litert import interpreter as litert
  interp = litert.Interpreter(model_path=str(path))
  return [op["op_name"] for op in interp._get_ops_details()]  # pylint: disable=protected-access


def _mean_steps(reference, outputs, step):
  return float(np.mean(np.abs(np.asarray(outputs, np.float64) - reference)) / step)


def _check_agreement(label, reference, outputs, step, noise=None):
  """The runtime's outputs against the QAT model's: mean |diff| within one
  output step, max within 3, 90% within one, every clear-margin argmax.
  `noise`: (max steps, fraction within one, mean steps, clear-margin argmax
  agreement) of LiteRT against itself on the same model (XNNPACK vs its
  reference kernels), the bound where it is looser (the mean: 1.1x the
  noise; argmax: the noise's less 2 points): a deeper net
  amplifies the kernels' one-step roundings, ours and the runtime's alike."""
  worst, within, argmax, clear = agreement(reference, outputs, step)
  mean = _mean_steps(reference, outputs, step)
  print(f"\n{label}: mean |diff| {mean:.3f} steps, max {worst:.2f}, "
        f"{within:.2%} within one step, argmax {argmax:.2%} of {clear} "
        "clear-margin samples")
  mean_bound, worst_bound, within_bound, argmax_bound = 1.0, 3.0, 0.90, 1.0
  if noise is not None:
    mean_bound = max(mean_bound, 1.1 * noise[2])
    worst_bound = max(worst_bound, noise[0] + 1e-3)
    within_bound = min(within_bound, noise[1] - 0.01)
    argmax_bound = min(argmax_bound, noise[3] - 0.02)
  assert mean <= mean_bound, (label, mean, mean_bound)
  assert worst <= worst_bound, (label, worst, worst_bound)
  assert within >= within_bound, (label, within, within_bound)
  assert argmax >= argmax_bound, (label, argmax, argmax_bound)
  return worst, within


@pytest.mark.litert
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_litert_is_fully_int8_and_agrees(name, tmp_path):
  _, qat = _trained(name)
  path = qk.export(qat, str(tmp_path / "m.tflite"), verbose=False)
  ops = _ops(path)
  # Float only at the edges: one QUANTIZE of the input first (later ones
  # rescale int8 to int8), one DEQUANTIZE of the output last.
  assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE", ops
  assert ops.count("DEQUANTIZE") == 1, ops
  with open(path, "rb") as f:
    assert litert_float_ops(f.read()) == []
  # BatchNormalization leaves no MUL/ADD: every ADD and MUL is an Add or
  # Multiply of the QAT model (a layer or a keras.ops node; swish and
  # hard-sigmoid are rebuilt from them).
  kinds = [type(op).__name__ for op in qat.operations]
  assert ops.count("MUL") == kinds.count("Multiply"), ops
  assert ops.count("ADD") == kinds.count("Add"), ops
  x, reference = _held_out(qat)
  _check_litert(name, path, x, reference, output_step(qat))


_NOISE = {}


def _litert_noise(name, xnnpack, kernels, step):
  """LiteRT against itself on one file (XNNPACK vs its reference kernels):
  (max steps, fraction within one, mean steps, clear-margin argmax
  agreement), remembered per architecture for the ONNX tests."""
  worst, within, argmax, _ = agreement(xnnpack, kernels, step)
  noise = (worst, within, _mean_steps(xnnpack, kernels, step), argmax)
  print(f"{name}: XNNPACK vs reference kernels: mean {noise[2]:.3f} steps, "
        f"max {noise[0]:.2f}, {noise[1]:.2%} within one, argmax {argmax:.2%}")
  # The runtime's two kernel paths agree with each other to a few steps (a
  # broken file or runner would not): 5, or 8 on the ConvNeXt-style net.
  # There (tf_qdq.keras.compare, per tensor) the optimized and reference
  # 7x7 depthwise kernels part by a step on 4% of their outputs, and the
  # LayerNormalizations after it magnify that: the last one normalizes a
  # pooled 16-vector whose mean sits on a grid 10x finer than its input's,
  # where the two kernel sets are 1 mean step apart, and 7 output steps at
  # the most.
  worst_bound = 8.0 if name.startswith("convnext") else 5.0
  assert noise[2] <= 1.5 and noise[0] <= worst_bound + 1e-3, noise
  _NOISE[name] = noise
  return noise


def _noise_of(name, qat, tmp_path):
  """The LiteRT noise of an architecture's QAT model (exported here if the
  LiteRT test has not run): the yardstick of an int8 runtime's own
  rounding for a net this deep."""
  if name not in _NOISE:
    path = qk.export(qat, str(tmp_path / "noise.tflite"), verbose=False)
    x, _ = _held_out(qat)
    _litert_noise(name, qk.run_litert(path, x),
                  qk.run_litert(path, x, reference_kernels=True),
                  output_step(qat))
  return _NOISE[name]


@pytest.mark.litert
def test_litert_int8_io_and_interface(tmp_path):
  _, qat = _trained("mlp")
  path = qk.export(qat, str(tmp_path / "m.tflite"), verbose=False,
                   inference_input_type=tf.int8,
                   inference_output_type=tf.int8)
  from ai_edge_litert import interpreter as litert
  interp = litert.Interpreter(model_path=path)
  assert interp.get_input_details()[0]["dtype"] == np.int8
  assert interp.get_output_details()[0]["dtype"] == np.int8
  assert "QUANTIZE" not in _ops(path) and "DEQUANTIZE" not in _ops(path)
  x, reference = _held_out(qat)
  _check_agreement("mlp LiteRT int8 I/O", reference, qk.run_litert(path, x),
                   output_step(qat))


@pytest.mark.litert
def test_litert_four_bit_conv_weights_stay_on_the_grid(tmp_path):
  float_model, qat = _trained("resnet_style", num_bits=4)
  with pytest.warns(UserWarning, match="8-bit scale") as caught:
    path = qk.export(qat, str(tmp_path / "m.tflite"), verbose=False)
  # Conv2D keeps 4 bits; the Dense layer cannot, and is named.
  assert "quant_dense" in " ".join(str(w.message) for w in caught)
  from ai_edge_litert import interpreter as litert
  interp = litert.Interpreter(model_path=path)
  four_bit = 0
  for d in interp.get_tensor_details():
    if d["dtype"] == np.int8 and len(d["shape"]) == 4 and d[
        "quantization_parameters"]["scales"].size > 1:
      values = interp.get_tensor(d["index"])
      assert np.abs(values).max() <= 7, d["name"]
      assert max(len(np.unique(values[c])) for c in range(len(values))) <= 15
      four_bit += 1
  assert four_bit == sum(type(layer).__name__ == "Conv2D"
                         for layer in float_model.layers)
  x, reference = _held_out(qat)
  _check_agreement("resnet_style 4-bit LiteRT", reference,
                   qk.run_litert(path, x), output_step(qat))


@pytest.mark.litert
def test_litert_names_float_islands(tmp_path):
  import keras
  inputs = keras.Input((8,))
  h = keras.layers.Dense(8)(inputs)
  # RMS scaling: not in the int8 scheme (plain LayerNormalization is).
  h = keras.layers.LayerNormalization(rms_scaling=True, name="rms_norm")(h)
  model = keras.Model(inputs, keras.layers.Dense(4)(h))
  qat = qk.quantize_model(model, verbose=False)
  assert "rms_norm" in qat.unquantized_layers
  qat(np.ones((4, 8), np.float32), training=True)
  with pytest.raises(ValueError, match="run in float"):
    qk.export(qat, str(tmp_path / "m.tflite"), verbose=False)


@pytest.mark.litert
def test_export_rejects_models_it_cannot_ship(tmp_path):
  _, qat = _trained("mlp")
  with pytest.raises(ValueError, match="format must be one of"):
    qk.export(qat, str(tmp_path / "m"), format="coreml")
  import keras
  inputs = keras.Input((4,))
  float_model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
  with pytest.raises(ValueError, match="quantize_model"):
    qk.export(float_model, str(tmp_path / "f.tflite"))
  legacy = qk.quantize_model(float_model, scheme="symmetric_qdq",
                             verbose=False)
  with pytest.raises(ValueError, match="symmetric_qdq"):
    qk.export(legacy, str(tmp_path / "l.tflite"))
  fresh = qk.quantize_model(float_model, verbose=False)
  with pytest.warns(UserWarning, match="no training batch"):
    qk.export(fresh, str(tmp_path / "u.tflite"), verbose=False)


_STOCK_LOADER = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    x = np.load(sys.argv[2])
    loaded = tf.saved_model.load(sys.argv[1])
    out = loaded.signatures["serving_default"](tf.constant(x))
    np.save(sys.argv[3], list(out.values())[0].numpy())
    assert not [m for m in sys.modules if m.startswith("tf_qdq")]
    print("loaded without tf_qdq")
""")


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_stock_saved_model_is_bit_identical_without_tf_qdq(name, tmp_path):
  _, qat = _trained(name)
  path = qk.export(qat, str(tmp_path / "sm"), format="tf_saved_model",
                   verbose=False)
  x, reference = _held_out(qat)
  np.save(tmp_path / "x.npy", x)
  env = dict(os.environ, PYTHONPATH="")
  done = subprocess.run(
      [sys.executable, "-c", _STOCK_LOADER, path, str(tmp_path / "x.npy"),
       str(tmp_path / "y.npy")], cwd=str(tmp_path), env=env,
      capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "loaded without tf_qdq" in done.stdout
  out = np.load(tmp_path / "y.npy")
  assert out.dtype == reference.dtype
  np.testing.assert_array_equal(out.view(np.uint32), reference.view(np.uint32))


def _check_litert(name, path, x, reference, step):
  """LiteRT's XNNPACK and reference kernels on `x`, each against the QAT
  model's `reference` outputs: within the fixed bound, or LiteRT's own noise
  (the two kernel paths' difference on the same file) where that is
  looser. Returns (xnnpack outputs, noise)."""
  xnnpack = qk.run_litert(path, x)
  kernels = qk.run_litert(path, x, reference_kernels=True)
  noise = _litert_noise(name, xnnpack, kernels, step)
  for label, out in (("xnnpack", xnnpack), ("reference", kernels)):
    _check_agreement(f"{name} LiteRT {label}", reference, out, step, noise)
  return xnnpack, noise


def _weight_storage(proto):
  """{weight name: (integer dtype, zero points, integers)} of the per-channel
  weight DequantizeLinear nodes the ONNX export writes."""
  from onnx import numpy_helper
  inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
  return {n.output[0]: (inits[n.input[0]].dtype, inits[n.input[2]],
                        inits[n.input[0]])
          for n in proto.graph.node
          if n.op_type == "DequantizeLinear" and n.name.endswith("_dequantize")}


def _check_onnxruntime(label, path, qat, tmp_path, record_property,
                      noise=None, held=None):
  """onnxruntime at its default optimizations and with them off, on this CPU
  and on the emulated AVX2 one: each of the four runs must agree with the QAT
  model. With the optimizations off, onnxruntime runs the ONNX graph's own
  float semantics, which are the QAT model's bits: the halves an average
  pooling makes round away from zero in both (as TFLite's kernels do; the
  export carries the QAT model's tie shift before QuantizeLinear, which
  rounds halves to even). At the default ones its fused integer kernels
  round like any int8 runtime. `noise` (LiteRT's, see _check_agreement)
  bounds both where it is looser than the fixed bound. `held`: the inputs
  (default: _held_out's).
  Returns the held-out inputs and the QAT model's outputs on them."""
  if held is None:
    x, reference = _held_out(qat)
  else:
    x, reference = held, qat(held, training=False).numpy()
  record_property("cpu", _ort.cpu_summary())
  for emulated in (False, True):
    where = f"emulated {_ort.EMULATED_CPU}" if emulated else "this CPU"
    outputs = _ort.run(path, x, tmp_path, emulated=emulated)
    for level in _ort.LEVELS:
      worst, within = _check_agreement(
          f"{label} onnxruntime ({level}, {where})", reference,
          outputs[level], output_step(qat), noise)
      record_property(f"{level} {where}", f"max {worst:.2f}, {within:.2%}")
  return x, reference


@pytest.mark.onnx
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_onnx_runs_in_onnxruntime_and_agrees(name, tmp_path, record_property):
  import onnx
  _, qat = _trained(name)
  path = qk.export(qat, str(tmp_path / "m.onnx"), format="onnx",
                   verbose=False)
  proto = onnx.load(path)
  ops = [n.op_type for n in proto.graph.node]
  assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
  storage = _weight_storage(proto)
  # Every weight a Conv, ConvTranspose or MatMul reads is an integer
  # initializer through its DequantizeLinear (tf2onnx shares equal
  # constants, so there can be fewer than kernels), and there is one at
  # least for each quantized layer's kernel.
  weights = [n.input[1] for n in proto.graph.node
             if n.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm")]
  assert weights and set(weights) <= set(storage), sorted(
      set(weights) - set(storage))
  assert len(storage) >= len(qat.quantized_layers)
  # Full 8-bit grids go out as uint8 with zero point 128 (weight_dtype
  # "auto"): the kernels onnxruntime then picks never saturate.
  for weight, (dtype, zero, _) in storage.items():
    assert dtype == np.uint8 and np.all(zero == 128), weight
  _check_onnxruntime(name, path, qat, tmp_path, record_property,
                     _noise_of(name, qat, tmp_path))


@pytest.mark.onnx
@pytest.mark.parametrize("name", ["mlp", "mobilenet_v2_style"])
def test_onnx_seven_bit_weights_are_int8_and_agree_on_every_cpu(
    name, tmp_path, record_property):
  """quantize_model(num_bits=7): int8 weights in [-63, 63], which
  onnxruntime's fast uint8 x int8 kernels compute exactly without VNNI."""
  import onnx
  _, qat = _trained(name, num_bits=7)
  path = qk.export(qat, str(tmp_path / "m.onnx"), format="onnx",
                   verbose=False)
  storage = _weight_storage(onnx.load(path))
  assert len(storage) == len(qat.quantized_layers)
  for weight, (dtype, zero, ints) in storage.items():
    assert dtype == np.int8 and not zero.any(), weight
    assert np.abs(ints.astype(np.int32)).max() == 63, weight
  _check_onnxruntime(f"{name} 7-bit", path, qat, tmp_path, record_property)


@pytest.mark.onnx
def test_onnx_int8_weights_on_the_full_grid_warn(tmp_path):
  import onnx
  _, qat = _trained("mlp")
  with pytest.warns(UserWarning, match=r"without VNNI.*num_bits=7"):
    path = qk.export(qat, str(tmp_path / "m.onnx"), format="onnx",
                     weight_dtype="int8", verbose=False)
  for weight, (dtype, zero, ints) in _weight_storage(onnx.load(path)).items():
    assert dtype == np.int8 and not zero.any(), weight
    assert np.abs(ints.astype(np.int32)).max() == 127, weight
  with pytest.raises(ValueError, match="weight_dtype must be one of"):
    qk.export(qat, str(tmp_path / "b.onnx"), format="onnx",
              weight_dtype="int4", verbose=False)


def _pair_sum_model(path, weight_dtype):
  """MatMul of uint8 activations by a weight column of 127s (as int8, or as
  uint8 with zero point 128), through Q/DQ: an input of 255s makes each
  VPMADDUBSW pair sum 2 * 255 * 127, past int16."""
  import onnx
  from onnx import TensorProto, helper, numpy_helper
  rng = np.random.default_rng(0)
  ints = rng.integers(-127, 128, size=(64, 16))
  ints[:, 0] = 127
  if weight_dtype == "int8":
    weights, zero = ints.astype(np.int8), np.zeros(16, np.int8)
  else:
    weights, zero = (ints + 128).astype(np.uint8), np.full(16, 128, np.uint8)
  initializers = [
      numpy_helper.from_array(np.float32(1 / 255), "x_scale"),
      numpy_helper.from_array(np.uint8(0), "x_zero"),
      numpy_helper.from_array(weights, "w"),
      numpy_helper.from_array(np.full(16, 0.01, np.float32), "w_scale"),
      numpy_helper.from_array(zero, "w_zero"),
      numpy_helper.from_array(np.float32(0.05), "y_scale"),
      numpy_helper.from_array(np.uint8(128), "y_zero")]
  nodes = [
      helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"]),
      helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"],
                       ["xd"]),
      helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero"], ["wd"],
                       axis=1),
      helper.make_node("MatMul", ["xd", "wd"], ["y"]),
      helper.make_node("QuantizeLinear", ["y", "y_scale", "y_zero"], ["yq"]),
      helper.make_node("DequantizeLinear", ["yq", "y_scale", "y_zero"],
                       ["out"])]
  graph = helper.make_graph(
      nodes, "pair_sums",
      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 64])],
      [helper.make_tensor_value_info("out", TensorProto.FLOAT, [8, 16])],
      initializers)
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
  model.ir_version = 8
  onnx.save(model, path)
  return path


@pytest.mark.onnx
def test_emulated_cpu_runs_the_saturating_kernels(tmp_path):
  """The control for the emulated runs above: on the emulated AVX2 CPU,
  onnxruntime's fused kernel gets a saturating product wrong with int8
  weights (so the emulation reaches the pre-VNNI kernels, and the tests above
  could fail), and right with the same grid stored as uint8."""
  x = np.ones((8, 64), np.float32)
  steps = {}
  for dtype in ("int8", "uint8"):
    path = _pair_sum_model(str(tmp_path / f"{dtype}.onnx"), dtype)
    out = _ort.run(path, x, tmp_path, emulated=True)
    steps[dtype] = np.abs(out["default"] - out["disable_all"]).max() / 0.05
  print(f"\npair-sum control on emulated {_ort.EMULATED_CPU}: int8 weights "
        f"{steps['int8']:.0f} steps off, uint8 {steps['uint8']:.0f}")
  assert steps["int8"] > 10, steps
  assert steps["uint8"] <= 1.0 + 1e-4, steps


@pytest.mark.litert
@pytest.mark.onnx
def test_onnx_symmetric_activations_have_zero_point_zero(tmp_path,
                                                          record_property):
  """For TensorRT: int8 Q/DQ with zero point 0 everywhere. Its weights are
  7-bit, the grid that onnxruntime computes right on CPUs without VNNI."""
  import onnx
  from onnx import numpy_helper
  from _qat_models import ARCHITECTURES as archs
  import keras
  keras.utils.set_random_seed(3)
  model = archs["mobilenet_v2_style"]()
  x, y = data(model, 128, 3)
  asymmetric = qk.quantize_model(model, verbose=False)
  asymmetric(x, training=True)
  with pytest.raises(ValueError, match="symmetric_activations=True"):
    qk.export(asymmetric, str(tmp_path / "a.onnx"), format="onnx",
              symmetric_activations=True, verbose=False)
  qat = qk.quantize_model(model, symmetric_activations=True, num_bits=7,
                          verbose=False)
  qat.compile(keras.optimizers.Adam(1e-3),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  qat.fit(x, y, epochs=2, batch_size=32, verbose=0)
  for layer in qat.layers:
    if isinstance(layer, qk.ActivationQuantizer):
      mn, mx = layer.range()
      zero_point = -mn / ((mx - mn) / 255)  # uint8; 128 is int8's 0
      assert abs(zero_point - 128) < 1e-3, (layer.name, mn, mx)
  path = qk.export(qat, str(tmp_path / "m.onnx"), format="onnx",
                   symmetric_activations=True, verbose=False)
  proto = onnx.load(path)
  inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
  qdq = [n for n in proto.graph.node
         if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
  assert qdq
  for node in qdq:
    zero = inits[node.input[2]]
    assert zero.dtype == np.int8 and not zero.any(), node.name
  held, reference = _check_onnxruntime("mobilenet_v2_style symmetric 7-bit",
                                       path, qat, tmp_path, record_property)
  # The same symmetric model ships to LiteRT too (zero point 0 is legal).
  tflite = qk.export(qat, str(tmp_path / "m.tflite"), verbose=False)
  # Judged, like every LiteRT file, against LiteRT's own noise on it.
  _check_litert("mobilenet_v2_style symmetric", tflite, held, reference,
                output_step(qat))
  # Symmetric activations take int8 weights (TensorRT's form): a full 8-bit
  # grid is kept, and the export says what it costs on CPUs without VNNI.
  eight_bit = qk.quantize_model(model, symmetric_activations=True,
                                verbose=False)
  eight_bit(x, training=True)
  with pytest.warns(UserWarning, match=r"without VNNI.*num_bits=7"):
    qk.export(eight_bit, str(tmp_path / "s8.onnx"), format="onnx",
              symmetric_activations=True, verbose=False)
  with pytest.raises(ValueError, match="uint8.*symmetric_activations"):
    qk.export(eight_bit, str(tmp_path / "u8.onnx"), format="onnx",
              symmetric_activations=True, weight_dtype="uint8", verbose=False)


@pytest.mark.litert
def test_keras_model_export_ships_the_int8_model_too(tmp_path):
  """qat.export(path, format="litert"), Keras' own spelling, on the model
  quantize_model returns and on one reloaded from a .keras file."""
  import keras
  _, qat = _trained("mlp")
  assert isinstance(qat, qk.QuantizedModel)
  ours = qk.export(qat, str(tmp_path / "a.tflite"), verbose=False)
  theirs = qat.export(str(tmp_path / "b.tflite"), format="litert",
                      verbose=False)
  x, _ = _held_out(qat)
  np.testing.assert_array_equal(qk.run_litert(ours, x),
                                qk.run_litert(theirs, x))
  qat.save(str(tmp_path / "m.keras"))
  reloaded = keras.models.load_model(str(tmp_path / "m.keras"))
  assert isinstance(reloaded, qk.QuantizedModel)
  reloaded.export(str(tmp_path / "sm"), verbose=False)  # tf_saved_model
  assert rewrite_ops_in(str(tmp_path / "sm")) == set()


@pytest.mark.litert
def test_export_refuses_an_empty_range(tmp_path):
  import keras
  inputs = keras.Input((4,))
  model = keras.Model(inputs, keras.layers.Dense(2, activation="relu")(inputs))
  qat = qk.quantize_model(model, verbose=False)
  qat(np.zeros((8, 4), np.float32), training=True)  # the output: only zeros
  with pytest.raises(ValueError, match="empty range.*dead ReLU"):
    qk.export(qat, str(tmp_path / "m.tflite"), verbose=False)


@pytest.mark.litert
def test_two_inputs_and_a_nested_model_ship(tmp_path):
  """Multi-input functional models and nested Sequentials are rebuilt (the
  nested model inlined) and export like flat ones."""
  import keras
  keras.utils.set_random_seed(4)
  a, b = keras.Input((8,), name="a"), keras.Input((6,), name="b")
  branch = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8),
                             keras.layers.BatchNormalization(),
                             keras.layers.ReLU()], name="branch")
  h = keras.layers.Concatenate()([keras.layers.Dense(8, activation="relu")(a),
                                  branch(b)])
  model = keras.Model([a, b], keras.layers.Dense(4)(h))
  qat = qk.quantize_model(model, verbose=False)
  assert len(qat.folded_batch_norms) == 1  # inside the nested Sequential
  rng = np.random.default_rng(5)
  xa = rng.normal(size=(128, 8)).astype(np.float32)
  xb = rng.normal(size=(128, 6)).astype(np.float32)
  qat.compile(keras.optimizers.Adam(1e-3), "mse")
  qat.fit([xa, xb], rng.normal(size=(128, 4)), epochs=2, verbose=0)
  reference = qat([xa, xb], training=False).numpy()
  path = qk.export(qat, str(tmp_path / "m.tflite"), verbose=False)
  out = qk.run_litert(path, {"a": xa, "b": xb})
  _check_agreement("two inputs LiteRT", reference, out, output_step(qat))
  saved = qk.export(qat, str(tmp_path / "sm"), format="tf_saved_model",
                    verbose=False)
  served = tf.saved_model.load(saved).signatures["serving_default"]
  got = list(served(a=tf.constant(xa), b=tf.constant(xb)).values())[0]
  np.testing.assert_array_equal(got.numpy().view(np.uint32),
                                reference.view(np.uint32))


@pytest.mark.litert
def test_conv3d_is_named_before_and_at_litert_export(tmp_path):
  import keras
  x = keras.Input((6, 6, 6, 2))
  y = keras.layers.Conv3D(4, 3, activation="relu", name="volume")(x)
  y = keras.layers.GlobalAveragePooling3D()(y)
  qat = qk.quantize_model(keras.Model(x, keras.layers.Dense(3)(y)),
                          verbose=False)
  assert any(name == "volume" and "CONV_3D" in why
             for name, why in qat.quantization_warnings)
  assert "volume" in qat.quantized_layers
  assert "volume" not in qat.unquantized_layers
  inputs = np.random.default_rng(0).normal(size=(16, 6, 6, 6, 2))
  qat(inputs.astype(np.float32), training=True)
  with pytest.raises(ValueError, match="CONV_3D -> .*volume"):
    qk.export(qat, str(tmp_path / "m.tflite"), verbose=False)
  with pytest.warns(UserWarning, match="CONV_3D"):
    qk.export(qat, str(tmp_path / "f.tflite"), verbose=False,
              allow_float_ops=True)


def _token_model():
  """Embedding and an RMS-scaling LayerNormalization: not in the int8
  scheme, so a float island between int32 token ids and an int8 Dense."""
  keras.utils.set_random_seed(0)
  x = keras.Input((8,), dtype="int32")
  y = keras.layers.Embedding(50, 16)(x)
  y = keras.layers.LayerNormalization(rms_scaling=True)(y)
  y = keras.layers.GlobalAveragePooling1D()(y)
  return keras.Model(x, keras.layers.Dense(4)(y))


@pytest.mark.litert
def test_a_float_island_ships_frozen_and_int32_inputs_pass_through(tmp_path):
  qat = qk.quantize_model(_token_model(), verbose=False)
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, 50, size=(64, 8)).astype(np.int32)
  qat.compile("adam", "mse")
  qat.fit(tokens, rng.normal(size=(64, 4)), epochs=3, verbose=0)
  path = str(tmp_path / "island.tflite")
  with pytest.warns(UserWarning, match="run in float.*layer_normalization.*frozen"):
    qk.export(qat, path, allow_float_ops=True, verbose=False)
  ops = _ops(path)
  # Every variable frozen: no READ_VARIABLE for XNNPACK to get wrong or the
  # reference kernels to reject.
  assert not {"VAR_HANDLE", "READ_VARIABLE"} & set(ops), ops
  reference = qat(tokens, training=False).numpy()
  step = output_step(qat)
  for kernels in (False, True):  # the token ids reach GATHER as they are
    out = qk.run_litert(path, tokens, reference_kernels=kernels)
    # A few steps: the converter stores the island's weights in int8.
    assert np.abs(out - reference).max() <= 4 * step, (kernels, step)


def test_gelu_and_grouped_conv_ship_to_litert_and_onnx_names_them(tmp_path):
  """GELU and a grouped Conv2D (2 groups of 2 channels) run in int8 in
  LiteRT (GELU, CONV_2D) and agree; tf2onnx cannot convert the grouped
  convolution (the XLA-compiled function Keras runs it in), and the ONNX
  export says so, naming it and the fix, instead of writing a file no
  runtime loads."""
  keras.utils.set_random_seed(3)
  x = keras.Input((8, 8, 4))
  y = L.Conv2D(8, 3, padding="same", groups=2, activation="relu")(x)
  y = L.Conv2D(8, 3, padding="same", activation="gelu")(y)
  model = keras.Model(x, L.Dense(10)(L.GlobalAveragePooling2D()(y)))
  qat = qk.quantize_model(model, verbose=False)
  data_x = np.random.default_rng(0).normal(size=(128, 8, 8, 4)).astype("f")
  qat.compile("adam", "mse")
  qat.fit(data_x, np.zeros((128, 10)), epochs=1, verbose=0)
  path = qk.export(qat, str(tmp_path / "m.tflite"), verbose=False)
  ops = _ops(path)
  assert "GELU" in ops and ops.count("CONV_2D") == 2, ops
  with open(path, "rb") as f:
    assert litert_float_ops(f.read()) == []
  reference = qat(data_x, training=False).numpy()
  _check_litert("gelu/grouped", path, data_x, reference, output_step(qat))
  with pytest.raises(ValueError, match=r"PartitionedCall.*groups"):
    qk.export(qat, str(tmp_path / "m.onnx"), format="onnx", verbose=False)
  assert not (tmp_path / "m.onnx").exists()


@pytest.mark.litert
@pytest.mark.onnx
def test_layer_norm_on_sequences_and_vectors_ships_int8(tmp_path,
                                                        record_property):
  """LayerNormalization on [batch, steps, features] (a transformer's) and
  on [batch, features]: every op int8 in LiteRT (the means as
  FULLY_CONNECTED, RSQRT, the affine map as DEPTHWISE_CONV_2D), and LiteRT
  and onnxruntime agree with the QAT model within LiteRT's own noise; the
  gamma and beta of each LayerNormalization keep training."""
  keras.utils.set_random_seed(4)
  x = keras.Input((8, 12))
  h = L.LayerNormalization()(L.Dense(16)(x))
  h = L.Dense(16, activation="relu")(h)
  h = L.GlobalAveragePooling1D()(h)
  h = L.LayerNormalization(name="vector_norm")(L.Dense(16)(h))
  model = keras.Model(x, L.Dense(10)(h))
  qat = qk.quantize_model(model, verbose=False)
  assert qat.quantization_warnings == () and qat.unquantized_layers == ()
  assert "vector_norm" in qat.folded_batch_norms
  data_x, data_y = data(model, 256, 4)
  qat.compile(keras.optimizers.Adam(1e-2),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  affine = [layer for layer in qat.layers
            if isinstance(layer, qk.QuantizedLayer)
            and "vector_norm" in layer.name]
  before = [np.array(w) for layer in affine for w in layer.trainable_weights]
  qat.fit(data_x, data_y, epochs=2, batch_size=32, verbose=0)
  after = [np.array(w) for layer in affine for w in layer.trainable_weights]
  assert before and any(np.any(a != b) for a, b in zip(after, before))
  path = qk.export(qat, str(tmp_path / "m.tflite"), verbose=False)
  ops = _ops(path)
  # Two RSQRT, one per LayerNormalization; the one MEAN is the pooling's.
  assert ops.count("RSQRT") == 2 and ops.count("MEAN") == 1, ops
  with open(path, "rb") as f:
    assert litert_float_ops(f.read()) == []
  held, reference = _held_out(qat)
  step = output_step(qat)
  _, noise = _check_litert("layer_norm_net", path, held, reference, step)
  onnx_path = qk.export(qat, str(tmp_path / "m.onnx"), format="onnx",
                        verbose=False)
  _check_onnxruntime("layer_norm_net", onnx_path, qat, tmp_path,
                     record_property, noise)


@pytest.mark.litert
@pytest.mark.onnx
def test_depthwise_grouped_conv_and_exact_gelu_ship_everywhere(
    tmp_path, record_property):
  """ConvNeXt's block: a Conv2D with groups == its input channels (a
  depthwise convolution) and the exact GELU. LiteRT runs DEPTHWISE_CONV_2D
  and GELU in int8; tf2onnx converts both (the grouped convolution as a
  depthwise one, TF's Erfc as 1 - Erf); both runtimes agree with the QAT
  model."""
  keras.utils.set_random_seed(5)
  x = keras.Input((8, 8, 4))
  y = L.Conv2D(8, 1, activation="relu")(x)
  y = L.Conv2D(8, 3, padding="same", groups=8)(y)
  y = L.Activation("gelu")(L.Dense(16)(y))
  model = keras.Model(x, L.Dense(10)(L.GlobalAveragePooling2D()(y)))
  qat = qk.quantize_model(model, verbose=False)
  assert qat.quantization_warnings == ()
  rng = np.random.default_rng(5)
  data_x, _ = data(model, 256, 5)
  # Labels the net can learn (a fixed map of each image's own colour), so
  # that the outputs have clear margins for the argmax check.
  data_x += 2 * rng.normal(size=(256, 1, 1, 4)).astype(np.float32)
  projection = rng.normal(size=(4, 10))
  data_y = (data_x.mean(axis=(1, 2)) @ projection).argmax(axis=1)
  qat.compile(keras.optimizers.Adam(1e-2),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  qat.fit(data_x, data_y, epochs=4, batch_size=32, verbose=0)
  path = qk.export(qat, str(tmp_path / "m.tflite"), verbose=False)
  ops = _ops(path)
  assert "DEPTHWISE_CONV_2D" in ops and "GELU" in ops, ops
  with open(path, "rb") as f:
    assert litert_float_ops(f.read()) == []
  held, _ = data(model, 200, 123)
  held += 2 * rng.normal(size=(200, 1, 1, 4)).astype(np.float32)
  reference = qat(held, training=False).numpy()
  step = output_step(qat)
  xnnpack, noise = _check_litert("depthwise/gelu", path, held, reference,
                                 step)
  assert agreement(reference, xnnpack, step)[3] >= 50  # clear margins
  import onnx
  onnx_path = qk.export(qat, str(tmp_path / "m.onnx"), format="onnx",
                        verbose=False)
  node_types = {n.op_type for n in onnx.load(onnx_path).graph.node}
  assert "Erf" in node_types, node_types
  _check_onnxruntime("depthwise/gelu", onnx_path, qat, tmp_path,
                     record_property, noise, held)
