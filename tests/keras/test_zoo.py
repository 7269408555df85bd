"""A fast subset of the keras.applications zoo (tools/zoo.py, docs/zoo.md),
at the zoo's quick budget and smallest input sizes: each family is fitted
briefly, quantized, QAT-fitted, exported to LiteRT (no float op allowed) and
ONNX, and run in LiteRT (XNNPACK and reference kernels) and onnxruntime (both
optimization levels), each within the zoo's bar against LiteRT's own noise.

The four are the cheapest that between them cover depthwise/pointwise
stacks, inverted residuals, MobileNetV3's keras.ops hard-sigmoid/hard-swish,
squeeze-and-excitation Multiply, swish, and the Rescaling/Normalization
preprocessing layers. `make zoo` runs every family.
"""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FAST_FAMILIES = ("MobileNet", "MobileNetV2", "MobileNetV3Small",
                 "EfficientNetB0")


def _zoo():
  spec = importlib.util.spec_from_file_location(
      "zoo", os.path.join(ROOT, "tools", "zoo.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.slow
@pytest.mark.litert
@pytest.mark.onnx
@pytest.mark.parametrize("family", FAST_FAMILIES)
def test_family_ships_fully_int8_and_agrees(family, tmp_path,
                                            record_property):
  zoo = _zoo()
  record = zoo.run_family(family, quick=True, workdir=str(tmp_path))
  summary = {key: record.get(key) for key in (
      "verdict", "float_accuracy", "qat_accuracy", "clear_samples")}
  for runtime in ("litert", "onnx"):
    entry = record.get(runtime, {})
    summary[runtime] = {key: entry.get(key) for key in (
        "error", "float_ops", "xnnpack", "reference", "noise", "default",
        "disable_all") if key in entry}
  text = json.dumps(summary, indent=1, default=str)
  print(f"\n{family}: {text}")
  record_property("zoo", text)
  assert record["quantize"]["ok"], record["quantize"]
  assert record["litert"]["ok"] and record["litert"]["float_ops"] == [], text
  assert record["onnx"]["ok"], text
  # Enough clear-margin samples that the argmax bar means something.
  assert record["clear_samples"] >= 50, text
  assert record["verdict"] == "pass", text
