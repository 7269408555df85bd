"""What run_benchmarks.py measures: the op cases, their inputs, the floor and
each case's traffic bound.

Every case runs three contenders on the same prebuilt inputs: tf_qdq's public
function, TF's built-in and the floor (`x + 1` in the case's dtype: one read,
one write). A case's traffic bound is the floor's time times its factor: 1.0
for one read and one write, 1.5 for two reads and one write. Why these
choices: docs/performance.md, "How we measure" and "Memory-traffic bound".
"""
import functools

import numpy as np
import tensorflow as tf

import tf_qdq

SIZES = {  # name -> [rows, cols]; channels: cols (last axis), rows (axis 0)
    "1K": (16, 64),
    "64K": (64, 1024),
    "1M": (1024, 1024),
    "16M": (16384, 1024),
}
DTYPES = {"float32": tf.float32, "float16": tf.float16,
          "bfloat16": tf.bfloat16}
QUICK_SIZES = ["64K", "1M"]
MODES = ["graph", "eager"]
GRAPH_DTYPES = ["float32"]  # graph mode: float32, the dtype training runs in
BOUND_SIZES = ["1M", "16M"]  # sizes where the bound target applies

# Traffic-bound factor, in units of the floor (one read + one write):
ONE_PASS = 1.0   # one read, one write
TWO_READS = 1.5  # two reads (a computed range's two passes; a gradient)


def timing_plan(size_name, quick):
  """(min_rounds, max_rounds, target seconds per case, warm-up calls)."""
  if quick:
    return (3, 5, 0.5, 1) if size_name == "16M" else (5, 20000, 0.1, 5)
  if size_name == "16M":
    return 7, 11, 1.0, 2
  if size_name == "1M":
    return 7, 20000, 0.3, 5
  return 9, 50000, 0.3, 50


class Case:
  """One benchmarked op configuration."""

  def __init__(self, key, label, factor, per_channel, axis, build,
               tf_note=""):
    self.key = key
    self.label = label
    self.factor = factor
    self.per_channel = per_channel
    self.axis = axis  # None: per tensor; 1: last axis; 0: axis 0
    self.build = build  # (inputs) -> (ours_fn, tf_fn)
    self.tf_note = tf_note


def _channels(shape, axis):
  return 1 if axis is None else shape[axis]


def _range(d, axis):
  """(min, max, float32 min, float32 max) per tensor or along `axis`."""
  c = "" if axis is None else f"_c{axis}"
  return d["mn" + c], d["mx" + c], d["mn32" + c], d["mx32" + c]


# Each builder returns (tf_qdq's call, TF's call) as functools.partial objects,
# as the floor: every contender pays the same (C-level) call overhead.
_call = functools.partial
_V4 = tf_qdq.quantize_and_dequantize_v4


def _qdq_tensor_given(d):
  mn, mx, mn32, mx32 = _range(d, None)
  return (_call(_V4, d["x"], mn, mx, range_given=True),
          _call(tf.raw_ops.QuantizeAndDequantizeV4, input=d["x32"],
                input_min=mn32, input_max=mx32, range_given=True))


def _qdq_tensor_computed(d):
  z, z32 = d["zero"], d["zero32"]
  return (_call(_V4, d["x"], z, z, range_given=False),
          _call(tf.raw_ops.QuantizeAndDequantizeV4, input=d["x32"],
                input_min=z32, input_max=z32, range_given=False))


def _qdq_channel_given(axis):
  def build(d):
    mn, mx, mn32, mx32 = _range(d, axis)
    # TF 2.21's V2/V4 reject every per-channel range_given input; V3 works.
    return (_call(_V4, d["x"], mn, mx, range_given=True, axis=axis),
            _call(tf.raw_ops.QuantizeAndDequantizeV3, input=d["x32"],
                  input_min=mn32, input_max=mx32, num_bits=d["num_bits"],
                  range_given=True, axis=axis))
  return build


def _qdq_channel_computed(axis):
  def build(d):
    z, z32 = d[f"zero_c{axis}"], d[f"zero32_c{axis}"]
    return (_call(_V4, d["x"], z, z, range_given=False, axis=axis),
            _call(tf.raw_ops.QuantizeAndDequantizeV4, input=d["x32"],
                  input_min=z32, input_max=z32, range_given=False,
                  axis=axis))
  return build


def _qdq_grad(axis):
  def build(d):
    mn, mx, mn32, mx32 = _range(d, axis)
    op_axis = -1 if axis is None else axis
    return (_call(tf_qdq.quantize_and_dequantize_v4_grad, d["g"], d["x"], mn,
                  mx, axis=op_axis),
            _call(tf.raw_ops.QuantizeAndDequantizeV4Grad, gradients=d["g32"],
                  input=d["x32"], input_min=mn32, input_max=mx32,
                  axis=op_axis))
  return build


def _fake_quant(ours_fn, tf_fn, axis, gradient, **attrs):
  """A FakeQuant case: `ours_fn` and `tf_fn` called alike, on (gradients,)
  inputs (, min, max) (per tensor or along the last axis), and `attrs`."""
  def build(d):
    ours_args = [d["x"]]
    tf_args = [d["x32"]]
    if gradient:
      ours_args.insert(0, d["g"])
      tf_args.insert(0, d["g32"])
    if not attrs:
      mn, mx, mn32, mx32 = _range(d, axis)
      ours_args += [mn, mx]
      tf_args += [mn32, mx32]
    return (_call(ours_fn, *ours_args, **attrs),
            _call(tf_fn, *tf_args, **attrs))
  return build


_tfq = tf.quantization
_ARGS = {"min": -1.0, "max": 1.0}

CASES = [
    Case("qdq_tensor_given", "QDQ V4 per-tensor, range given", ONE_PASS,
         False, None, _qdq_tensor_given),
    Case("qdq_tensor_computed", "QDQ V4 per-tensor, computed range",
         TWO_READS, False, None, _qdq_tensor_computed),
    Case("qdq_channel_given_last",
         "QDQ V4 per-channel (last axis), range given", ONE_PASS, True, 1,
         _qdq_channel_given(1), tf_note="TF: V3"),
    Case("qdq_channel_given_axis0", "QDQ V4 per-channel (axis 0), range given",
         ONE_PASS, True, 0, _qdq_channel_given(0), tf_note="TF: V3"),
    Case("qdq_channel_computed_last",
         "QDQ V4 per-channel (last axis), computed range", TWO_READS, True, 1,
         _qdq_channel_computed(1)),
    Case("qdq_channel_computed_axis0",
         "QDQ V4 per-channel (axis 0), computed range", TWO_READS, True, 0,
         _qdq_channel_computed(0)),
    Case("qdq_grad_tensor", "QDQ V4Grad per-tensor", TWO_READS, False, None,
         _qdq_grad(None)),
    Case("qdq_grad_channel_last", "QDQ V4Grad per-channel (last axis)",
         TWO_READS, True, 1, _qdq_grad(1)),
    Case("qdq_grad_channel_axis0", "QDQ V4Grad per-channel (axis 0)",
         TWO_READS, True, 0, _qdq_grad(0)),
    Case("fq_args", "FakeQuantWithMinMaxArgs", ONE_PASS, False, None,
         _fake_quant(tf_qdq.fake_quant_with_min_max_args,
                     _tfq.fake_quant_with_min_max_args, None, False,
                     **_ARGS)),
    Case("fq_args_grad", "FakeQuantWithMinMaxArgsGradient", TWO_READS, False,
         None,
         _fake_quant(tf_qdq.fake_quant_with_min_max_args_gradient,
                     _tfq.fake_quant_with_min_max_args_gradient, None, True,
                     **_ARGS)),
    Case("fq_vars", "FakeQuantWithMinMaxVars", ONE_PASS, False, None,
         _fake_quant(tf_qdq.fake_quant_with_min_max_vars,
                     _tfq.fake_quant_with_min_max_vars, None, False)),
    Case("fq_vars_grad", "FakeQuantWithMinMaxVarsGradient", TWO_READS, False,
         None,
         _fake_quant(tf_qdq.fake_quant_with_min_max_vars_gradient,
                     _tfq.fake_quant_with_min_max_vars_gradient, None, True)),
    Case("fq_vars_pc", "FakeQuantWithMinMaxVarsPerChannel", ONE_PASS, True, 1,
         _fake_quant(tf_qdq.fake_quant_with_min_max_vars_per_channel,
                     _tfq.fake_quant_with_min_max_vars_per_channel, 1,
                     False)),
    Case("fq_vars_pc_grad", "FakeQuantWithMinMaxVarsPerChannelGradient",
         TWO_READS, True, 1,
         _fake_quant(
             tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient,
             _tfq.fake_quant_with_min_max_vars_per_channel_gradient, 1,
             True)),
]


def make_inputs(shape, dtype, seed=0):
  """All tensors a case may need, in `dtype` and as float32 copies for TF's
  built-ins (made once here, never timed)."""
  rng = np.random.default_rng(seed)
  x_np = rng.uniform(-1.2, 1.2, size=shape).astype(np.float32)
  g_np = rng.standard_normal(size=shape).astype(np.float32)
  d = {}

  def both(name, value, name32=None):
    t32 = tf.constant(value, tf.float32)
    d[name32 or name + "32"] = t32
    d[name] = t32 if dtype == tf.float32 else tf.cast(t32, dtype)

  both("x", x_np)
  both("g", g_np)
  if dtype != tf.float32:
    # TF's column runs on float32 copies of the SAME (rounded) values.
    d["x32"] = tf.cast(d["x"], tf.float32)
    d["g32"] = tf.cast(d["g"], tf.float32)
  both("mn", np.float32(-1.0))
  both("mx", np.float32(1.0))
  both("zero", np.float32(0.0))
  for axis in (0, 1):
    n = shape[axis]
    both(f"mn_c{axis}", np.full([n], -1.0, np.float32), f"mn32_c{axis}")
    both(f"mx_c{axis}", np.full([n], 1.0, np.float32), f"mx32_c{axis}")
    both(f"zero_c{axis}", np.zeros([n], np.float32), f"zero32_c{axis}")
  d["num_bits"] = tf.constant(8, tf.int32)
  d["one"] = tf.constant(1.0, dtype)
  return d


def floor_fn(d):
  """TF's elementwise `x + 1` in the case's dtype: one read and one write.
  AddV2 on a prebuilt scalar tensor: no Python-float conversion per call."""
  return _call(tf.raw_ops.AddV2, x=d["x"], y=d["one"])


def result(case, mode, dt_name, size, summaries, seconds):
  """A case's record: its three contenders' statistics (`summaries`: name ->
  harness.summarize), its traffic bound and the ratios the report uses."""
  shape = SIZES[size]
  elems = shape[0] * shape[1]
  itemsize = DTYPES[dt_name].size
  so, st, sf = summaries["ours"], summaries["tf"], summaries["floor"]
  ideal_bytes = elems * itemsize * (2 if case.factor == ONE_PASS else 3)
  bound_s = case.factor * sf["median_s"]
  return {
      "mode": mode,
      "op": case.key, "label": case.label, "tf_note": case.tf_note,
      "dtype": dt_name, "size": size, "shape": list(shape),
      "elements": elems, "axis": case.axis,
      "channels": _channels(shape, case.axis),
      "per_channel": case.per_channel,
      "factor": case.factor, "ideal_bytes": ideal_bytes,
      "ours": so, "tf": st, "floor": sf,
      "bound_s": bound_s,
      "x_bound": so["median_s"] / bound_s,
      "speedup": st["median_s"] / so["median_s"],
      "ours_over_tf": so["median_s"] / st["median_s"],
      "ours_gbs": ideal_bytes / so["median_s"] / 1e9,
      "tf_gbs": ideal_bytes / st["median_s"] / 1e9,
      "floor_gbs": 2 * elems * itemsize / sf["median_s"] / 1e9,
      "rounds": so["n"], "case_seconds": seconds,
  }
