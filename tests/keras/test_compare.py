"""tf_qdq.keras.compare: every int8 tensor of the QAT model beside the
runtime's (LiteRT, onnxruntime), in its own steps, with the runtime's own
noise; it must pass a model that ships right and point at the tensor where a
fault was put."""
import keras
import numpy as np
import pytest

import tf_qdq.keras as qk
from tf_qdq.keras.int8.activations import ActivationQuantizer
from _qat_models import data, trained_qat

pytestmark = pytest.mark.slow  # trains, converts, runs the runtimes

_CACHE = {}


def _model_and_files(tmp_path_factory):
  if not _CACHE:
    _, qat = trained_qat("mobilenet_v2_style")
    directory = tmp_path_factory.mktemp("compare")
    tflite = str(directory / "model.tflite")
    onnx = str(directory / "model.onnx")
    qk.export(qat, tflite, verbose=False)
    qk.export(qat, onnx, format="onnx", verbose=False)
    x, _ = data(qat, 24, seed=5)
    _CACHE.update(qat=qat, tflite=tflite, onnx=onnx, x=x)
  return _CACHE


def _quantizer_count(qat):
  count = 0
  for layer in qat.layers:
    if isinstance(layer, ActivationQuantizer) or (
        isinstance(layer, qk.QuantizedLayer) and layer.output_quantizer):
      count += len(layer._inbound_nodes)  # pylint: disable=protected-access
  return count


@pytest.mark.litert
@pytest.mark.onnx
@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_a_model_that_ships_right_parts_nowhere(kind, tmp_path_factory,
                                                capsys):
  c = _model_and_files(tmp_path_factory)
  result = qk.compare(c["qat"], c[kind], c["x"])
  printed = capsys.readouterr().out
  assert "first tensor where they part: none" in printed
  assert result.first_parting is None
  assert len(result.tensors) == _quantizer_count(c["qat"])
  paired = [t for t in result.tensors if t.runtime_name is not None]
  # The input quantizer and every Conv/Add output are int8 tensors in the
  # file; at most the ones a runtime op writes in place can go unpaired.
  assert len(paired) >= len(result.tensors) - 2, printed
  first = result.tensors[0]
  assert first.runtime_name is not None and first.max_steps <= 1.0, printed
  for t in paired:
    assert t.cosine > 0.99, (t, printed)
  for label, (_, mean) in result.outputs.items():
    assert mean <= 1.0, (label, printed)


@pytest.mark.litert
def test_it_points_at_the_layer_whose_weights_moved(tmp_path_factory):
  """Weights changed in the Keras model after the export: the file is the
  old model, and compare must name that layer's output as the first tensor
  where the two part (its inputs still agree)."""
  c = _model_and_files(tmp_path_factory)
  qat = keras.models.clone_model(c["qat"])
  qat.set_weights(c["qat"].get_weights())
  weighted = [layer for layer in qat.layers
              if isinstance(layer, qk.QuantizedLayer)
              and layer.output_quantizer is not None]
  target = weighted[len(weighted) // 2]
  kernel = next(v for v in target.layer.weights if "kernel" in v.path)
  kernel.assign(-kernel.numpy())
  result = qk.compare(qat, c["tflite"], c["x"], print_report=False)
  assert result.first_parting is not None, result.table()
  assert result.first_parting.name == target.name, result.table()
  before = result.tensors[:result.tensors.index(result.first_parting)]
  assert before and not any(t.parts for t in before)


@pytest.mark.filterwarnings("ignore:tf_qdq.keras.export. activation quantizers")
def test_it_refuses_what_it_cannot_compare(tmp_path):
  inputs = keras.Input((4,))
  model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
  qat = qk.quantize_model(model, verbose=False)
  x = np.zeros((2, 4), np.float32)
  with pytest.raises(ValueError, match="no file"):
    qk.compare(qat, str(tmp_path / "missing.tflite"), x)
  other = tmp_path / "model.bin"
  other.write_bytes(b"")
  with pytest.raises(ValueError, match=r"\.tflite or an \.onnx"):
    qk.compare(qat, str(other), x)
  with pytest.raises(TypeError, match="keras.Model"):
    qk.compare("model", str(other), x)
