#!/usr/bin/env python3
"""tf-qdq benchmark suite: every op against TensorFlow's built-in and the floor.

Not part of the tests. `make bench` runs it against the installed wheel; from a
source checkout, `PYTHONPATH=. .venv/bin/python bench/run_benchmarks.py` uses
the tree. It writes, under --out (default docs/):

  benchmarks.md    machine, method, targets (computed from the data), the
                   float32 16M headline table and full tables per dtype/size
  benchmarks.json  the raw numbers
  benchmarks.png   GB/s by op and size, one panel per dtype (needs matplotlib)

Method (details in benchmarks.md): two modes, TF's default thread pools.
Graph mode (float32): each contender is a `tf.function`, as Keras trains, so
TF's allocator hands the same output buffers back call after call; this is the
headline. Eager mode (every dtype): plain calls, each allocating a fresh
output, whose page faults at 16M values set a much slower floor. For each case
the three contenders (tf_qdq, TF's built-in, the floor `x + 1` in the same
dtype) run interleaved in rounds whose order rotates (A B C, B C A, ...); each
call is timed with time.perf_counter around the call itself (CPU kernels run
synchronously), and the median per contender is reported.
"""
import argparse
import datetime
import fnmatch
import gc
import json
import os
import platform
import re
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_qdq  # noqa: E402
from _marked import QAT_STEP_END, QAT_STEP_START, marked_section, replace_marked  # noqa: E402

# ---- configuration -----------------------------------------------------------

SIZES = {  # name -> 2-D shape [rows, cols]; channels: cols (last axis), rows (axis 0)
    "1K": (16, 64),
    "64K": (64, 1024),
    "1M": (1024, 1024),
    "16M": (16384, 1024),
}
DTYPES = {"float32": tf.float32, "float16": tf.float16, "bfloat16": tf.bfloat16}
QUICK_SIZES = ["64K", "1M"]
MODES = ["graph", "eager"]
GRAPH_DTYPES = ["float32"]  # graph mode: float32, the dtype training runs in
BOUND_SIZES = ["1M", "16M"]  # sizes where the bound target applies

# Traffic-bound factor, in units of the floor (one read + one write):
ONE_PASS = 1.0   # one read, one write
TWO_READS = 1.5  # two reads (computed range: a pass to find it; or a gradient), one write

TARGET_BOUND = 1.15       # x traffic bound, float32 16M
TARGET_PER_CHANNEL = 40.0  # speedup over TF, per-channel ops, float32 16M
TARGET_HALF = 0.5 * TARGET_BOUND  # 16-bit time / float32 time, 16M


class Case:
  """One benchmarked op configuration."""

  def __init__(self, key, label, factor, per_channel, axis, build, tf_note=""):
    self.key = key
    self.label = label
    self.factor = factor
    self.per_channel = per_channel
    self.axis = axis  # None: per tensor; 1: last axis; 0: axis 0
    self.build = build  # (inputs) -> (ours_fn, tf_fn)
    self.tf_note = tf_note


def _channels(shape, axis):
  return 1 if axis is None else shape[axis]


def _qdq_tensor_given(d):
  x, mn, mx = d["x"], d["mn"], d["mx"]
  x32, mn32, mx32 = d["x32"], d["mn32"], d["mx32"]
  ours = lambda: tf_qdq.quantize_and_dequantize_v4(x, mn, mx, range_given=True)
  ref = lambda: tf.raw_ops.QuantizeAndDequantizeV4(
      input=x32, input_min=mn32, input_max=mx32, range_given=True)
  return ours, ref


def _qdq_tensor_computed(d):
  x, z, x32, z32 = d["x"], d["zero"], d["x32"], d["zero32"]
  ours = lambda: tf_qdq.quantize_and_dequantize_v4(x, z, z, range_given=False)
  ref = lambda: tf.raw_ops.QuantizeAndDequantizeV4(
      input=x32, input_min=z32, input_max=z32, range_given=False)
  return ours, ref


def _qdq_channel_given(axis):
  def build(d):
    x, x32 = d["x"], d["x32"]
    mn, mx = d[f"mn_c{axis}"], d[f"mx_c{axis}"]
    mn32, mx32 = d[f"mn32_c{axis}"], d[f"mx32_c{axis}"]
    bits = d["num_bits"]
    ours = lambda: tf_qdq.quantize_and_dequantize_v4(
        x, mn, mx, range_given=True, axis=axis)
    # TF 2.21's V2/V4 reject every per-channel range_given input; V3 works.
    ref = lambda: tf.raw_ops.QuantizeAndDequantizeV3(
        input=x32, input_min=mn32, input_max=mx32, num_bits=bits,
        range_given=True, axis=axis)
    return ours, ref
  return build


def _qdq_channel_computed(axis):
  def build(d):
    x, x32 = d["x"], d["x32"]
    z, z32 = d[f"zero_c{axis}"], d[f"zero32_c{axis}"]
    ours = lambda: tf_qdq.quantize_and_dequantize_v4(
        x, z, z, range_given=False, axis=axis)
    ref = lambda: tf.raw_ops.QuantizeAndDequantizeV4(
        input=x32, input_min=z32, input_max=z32, range_given=False, axis=axis)
    return ours, ref
  return build


def _qdq_grad(axis):
  def build(d):
    g, x, g32, x32 = d["g"], d["x"], d["g32"], d["x32"]
    if axis is None:
      mn, mx, mn32, mx32, op_axis = d["mn"], d["mx"], d["mn32"], d["mx32"], -1
    else:
      mn, mx = d[f"mn_c{axis}"], d[f"mx_c{axis}"]
      mn32, mx32 = d[f"mn32_c{axis}"], d[f"mx32_c{axis}"]
      op_axis = axis
    ours = lambda: tf_qdq.quantize_and_dequantize_v4_grad(
        g, x, mn, mx, axis=op_axis)
    ref = lambda: tf.raw_ops.QuantizeAndDequantizeV4Grad(
        gradients=g32, input=x32, input_min=mn32, input_max=mx32, axis=op_axis)
    return ours, ref
  return build


def _fq_args(d):
  x, x32 = d["x"], d["x32"]
  ours = lambda: tf_qdq.fake_quant_with_min_max_args(x, min=-1.0, max=1.0)
  ref = lambda: tf.quantization.fake_quant_with_min_max_args(
      x32, min=-1.0, max=1.0)
  return ours, ref


def _fq_args_grad(d):
  g, x, g32, x32 = d["g"], d["x"], d["g32"], d["x32"]
  ours = lambda: tf_qdq.fake_quant_with_min_max_args_gradient(
      g, x, min=-1.0, max=1.0)
  ref = lambda: tf.quantization.fake_quant_with_min_max_args_gradient(
      g32, x32, min=-1.0, max=1.0)
  return ours, ref


def _fq_vars(d):
  x, mn, mx, x32, mn32, mx32 = (d["x"], d["mn"], d["mx"], d["x32"], d["mn32"],
                                d["mx32"])
  ours = lambda: tf_qdq.fake_quant_with_min_max_vars(x, mn, mx)
  ref = lambda: tf.quantization.fake_quant_with_min_max_vars(x32, mn32, mx32)
  return ours, ref


def _fq_vars_grad(d):
  g, x, mn, mx = d["g"], d["x"], d["mn"], d["mx"]
  g32, x32, mn32, mx32 = d["g32"], d["x32"], d["mn32"], d["mx32"]
  ours = lambda: tf_qdq.fake_quant_with_min_max_vars_gradient(g, x, mn, mx)
  ref = lambda: tf.quantization.fake_quant_with_min_max_vars_gradient(
      g32, x32, mn32, mx32)
  return ours, ref


def _fq_vars_pc(d):
  x, mn, mx = d["x"], d["mn_c1"], d["mx_c1"]
  x32, mn32, mx32 = d["x32"], d["mn32_c1"], d["mx32_c1"]
  ours = lambda: tf_qdq.fake_quant_with_min_max_vars_per_channel(x, mn, mx)
  ref = lambda: tf.quantization.fake_quant_with_min_max_vars_per_channel(
      x32, mn32, mx32)
  return ours, ref


def _fq_vars_pc_grad(d):
  g, x, mn, mx = d["g"], d["x"], d["mn_c1"], d["mx_c1"]
  g32, x32, mn32, mx32 = d["g32"], d["x32"], d["mn32_c1"], d["mx32_c1"]
  ours = lambda: tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(
      g, x, mn, mx)
  ref = lambda: tf.quantization.fake_quant_with_min_max_vars_per_channel_gradient(  # noqa: E501
      g32, x32, mn32, mx32)
  return ours, ref


CASES = [
    Case("qdq_tensor_given", "QDQ V4 per-tensor, range given", ONE_PASS,
         False, None, _qdq_tensor_given),
    Case("qdq_tensor_computed", "QDQ V4 per-tensor, computed range", TWO_READS,
         False, None, _qdq_tensor_computed),
    Case("qdq_channel_given_last", "QDQ V4 per-channel (last axis), range given",
         ONE_PASS, True, 1, _qdq_channel_given(1), tf_note="TF: V3"),
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
    Case("fq_args", "FakeQuantWithMinMaxArgs", ONE_PASS, False, None, _fq_args),
    Case("fq_args_grad", "FakeQuantWithMinMaxArgsGradient", TWO_READS, False,
         None, _fq_args_grad),
    Case("fq_vars", "FakeQuantWithMinMaxVars", ONE_PASS, False, None, _fq_vars),
    Case("fq_vars_grad", "FakeQuantWithMinMaxVarsGradient", TWO_READS, False,
         None, _fq_vars_grad),
    Case("fq_vars_pc", "FakeQuantWithMinMaxVarsPerChannel", ONE_PASS, True, 1,
         _fq_vars_pc),
    Case("fq_vars_pc_grad", "FakeQuantWithMinMaxVarsPerChannelGradient",
         TWO_READS, True, 1, _fq_vars_pc_grad),
]


# ---- inputs ------------------------------------------------------------------


def make_inputs(shape, dtype, seed=0):
  """All tensors a case may need, in `dtype` and as float32 copies for TF's
  built-ins (made once here, never timed)."""
  rng = np.random.default_rng(seed)
  x_np = rng.uniform(-1.2, 1.2, size=shape).astype(np.float32)
  g_np = rng.standard_normal(size=shape).astype(np.float32)
  d = {}

  def both(name, value):
    t32 = tf.constant(value, tf.float32)
    d[name + "32"] = t32
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
    both(f"mn_c{axis}", np.full([n], -1.0, np.float32))
    both(f"mx_c{axis}", np.full([n], 1.0, np.float32))
    both(f"zero_c{axis}", np.zeros([n], np.float32))
    d[f"zero32_c{axis}"] = d[f"zero_c{axis}32"]
    d[f"mn32_c{axis}"] = d[f"mn_c{axis}32"]
    d[f"mx32_c{axis}"] = d[f"mx_c{axis}32"]
  d["num_bits"] = tf.constant(8, tf.int32)
  d["one"] = tf.constant(1.0, dtype)
  return d


def floor_fn(d):
  """TF's elementwise `x + 1` in the case's dtype: one read and one write.
  AddV2 on a prebuilt scalar tensor: no Python-float conversion per call."""
  x, one = d["x"], d["one"]
  return lambda: tf.raw_ops.AddV2(x=x, y=one)


# ---- timing ------------------------------------------------------------------


def timing_plan(size_name, quick):
  """(min_rounds, max_rounds, target seconds per case, warm-up calls)."""
  if quick:
    return (3, 5, 0.5, 1) if size_name == "16M" else (5, 20000, 0.1, 5)
  if size_name == "16M":
    return 7, 11, 1.0, 2
  if size_name == "1M":
    return 7, 20000, 0.3, 5
  return 9, 50000, 0.3, 50


def time_interleaved(fns, min_rounds, max_rounds, target_s, warmup):
  """Times each of `fns` (name -> callable) interleaved, rotating the order
  each round. Returns name -> list of seconds."""
  names = list(fns)
  for name in names:
    for _ in range(warmup):
      fns[name]()
  samples = {n: [] for n in names}
  gc.collect()
  gc_was_enabled = gc.isenabled()
  gc.disable()
  perf = time.perf_counter
  try:
    start = perf()
    rounds = 0
    while rounds < max_rounds:
      k = rounds % len(names)
      for name in names[k:] + names[:k]:
        f = fns[name]
        t0 = perf()
        keep = f()
        t1 = perf()
        samples[name].append(t1 - t0)
        keep = None  # noqa: F841  (the output is freed outside the timed region)
      rounds += 1
      if rounds >= min_rounds and perf() - start >= target_s:
        break
  finally:
    if gc_was_enabled:
      gc.enable()
  return samples


def summarize(ts):
  ts = sorted(ts)
  q = np.quantile(ts, [0.25, 0.5, 0.75])
  return {"median_s": float(statistics.median(ts)), "min_s": float(ts[0]),
          "p25_s": float(q[0]), "p75_s": float(q[2]), "n": len(ts)}


# ---- formatting --------------------------------------------------------------


def fmt_time(s):
  if s is None:
    return "-"
  if s >= 1e-3:
    return f"{s * 1e3:.2f} ms"
  return f"{s * 1e6:.1f} µs"


def fmt_x(v, digits=2):
  return "-" if v is None else f"{v:.{digits}f}x"


def fmt_gbs(v):
  if v is None:
    return "-"
  return f"{v:.1f}" if v >= 1 else f"{v:.2f}"


# ---- machine -----------------------------------------------------------------


def machine_info():
  model = platform.processor() or "unknown CPU"
  flags = ""
  try:
    with open("/proc/cpuinfo") as f:
      text = f.read()
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    if m:
      model = m.group(1).strip()
    m = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    if m:
      flags = m.group(1)
  except OSError:
    pass
  try:
    ncpu = len(os.sched_getaffinity(0))
  except AttributeError:
    ncpu = os.cpu_count()
  simd = [f for f in ("avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                      "avx2", "f16c") if re.search(rf"\b{f}\b", flags)]
  wide = all(re.search(rf"\b{f}\b", flags)
             for f in ("avx2", "avx512f", "avx512vl", "avx512dq"))
  if wide and "TF_QDQ_NO_AVX512" not in os.environ:  # set at all: AVX (blocks.h)
    isa = ("AVX-512 (tf_qdq's per-channel FakeQuant loops run their AVX-512 "
           "clones; the other loops are AVX code)")
  else:
    isa = ("AVX" + ("2" if "avx2" in simd else "") + " (no AVX-512 path: "
           + ("TF_QDQ_NO_AVX512 is set" if wide else "the CPU has no AVX-512")
           + "; every loop runs the build's AVX code)")
  mem = None
  try:
    with open("/proc/meminfo") as f:
      m = re.search(r"MemTotal:\s*(\d+) kB", f.read())
      if m:
        mem = f"{int(m.group(1)) / 2**20:.1f} GiB"
  except OSError:
    pass
  return {
      "cpu": model, "nproc": ncpu, "simd": simd, "isa": isa, "memory": mem,
      "python": platform.python_version(), "numpy": np.__version__,
      "tensorflow": tf.__version__, "tf_qdq": getattr(tf_qdq, "__version__", "?"),
      "tf_qdq_path": os.path.dirname(os.path.abspath(tf_qdq.__file__)),
      "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
      "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
      "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
      "loadavg_start": _loadavg(),
  }


def _loadavg():
  try:
    return [round(v, 2) for v in os.getloadavg()]
  except OSError:
    return None


# ---- analysis ----------------------------------------------------------------


def index_results(results):
  return {(r["op"], r["dtype"], r["size"]): r for r in results}


def _target(text, rows, misses, note=""):
  """A target's record: checked over `rows`, missed by `misses` (strings)."""
  return {"target": text, "evaluated": bool(rows),
          "met": bool(rows) and not misses, "checked": len(rows),
          "misses": misses, "note": note}


def evaluate_graph_targets(results, cases):
  """The graph-mode targets (what training sees): the bound at 1M and 16M,
  and at least TF's speed at every size."""
  f32 = [r for r in results if r["dtype"] == "float32"]
  rows = [r for r in f32 if r["size"] in BOUND_SIZES]
  slow = [r for r in f32 if r["tf"]]
  return [
      _target(f"Graph mode: every op (per-tensor, per-channel on any axis, "
              f"forward and gradient), float32 at 1M and 16M values: within "
              f"{TARGET_BOUND}x of its graph-mode traffic bound", rows,
              [f"{r['label']}, {r['size']}: {r['x_bound']:.2f}x the bound"
               for r in rows if r["x_bound"] > TARGET_BOUND]),
      _target("Graph mode: every op at least as fast as TF's built-in at "
              "every size (float32)", slow,
              [f"{r['label']}, {r['size']}: {r['ours_over_tf']:.2f}x TF's time"
               for r in slow if r["ours_over_tf"] > 1.0]),
  ]


def evaluate_targets(results, cases, sizes, dtypes):
  """Each eager-mode target from the issues, computed from the data."""
  idx = index_results(results)
  targets = []

  # 1. float32 16M within TARGET_BOUND of the traffic bound.
  rows = [idx[(c.key, "float32", "16M")] for c in cases
          if (c.key, "float32", "16M") in idx]
  misses = [(r["label"], r["x_bound"]) for r in rows
            if r["x_bound"] > TARGET_BOUND]
  targets.append({
      "target": f"Eager mode: every op (per-tensor, per-channel on any axis, "
                f"forward and gradient), float32 at 16M values: within "
                f"{TARGET_BOUND}x of its eager traffic bound (page-fault floor)",
      "evaluated": bool(rows), "met": bool(rows) and not misses,
      "checked": len(rows),
      "misses": [f"{l}: {v:.2f}x the bound" for l, v in misses]})

  # 2. at least as fast as TF at every size (float32: the same op on the same
  #    input). 16-bit rows vs TF's float32 op are listed for information.
  rows = [r for r in results if r["dtype"] == "float32" and r["tf"]]
  misses = [(r["label"], r["size"], r["ours_over_tf"]) for r in rows
            if r["ours_over_tf"] > 1.0]
  rows16 = [r for r in results if r["dtype"] != "float32" and r["tf"]]
  slow16 = [r for r in rows16 if r["ours_over_tf"] > 1.0]
  targets.append({
      "target": "Eager mode: every op at least as fast as TF's built-in at "
                "every size (float32), 1K values included",
      "evaluated": bool(rows), "met": bool(rows) and not misses,
      "checked": len(rows),
      "misses": [f"{l}, {s}: {v:.2f}x TF's time" for l, s, v in misses],
      "note": (f"16-bit rows vs TF's float32 op on a float32 copy: "
               f"{len(rows16) - len(slow16)} of {len(rows16)} at least as fast"
               if rows16 else "")})

  # 3. half / bfloat16 at about half of float32's time (16M).
  pairs, misses = 0, []
  for c in cases:
    r32 = idx.get((c.key, "float32", "16M"))
    if not r32:
      continue
    for dt in ("float16", "bfloat16"):
      r16 = idx.get((c.key, dt, "16M"))
      if not r16:
        continue
      pairs += 1
      ratio = r16["ours"]["median_s"] / r32["ours"]["median_s"]
      if ratio > TARGET_HALF:
        misses.append(f"{c.label}, {dt}: {ratio:.2f}x float32's time")
  targets.append({
      "target": f"Eager mode: half and bfloat16 take about half of float32's time at 16M "
                f"(met when <= {TARGET_HALF:.3f}x, i.e. 0.5 x {TARGET_BOUND})",
      "evaluated": pairs > 0, "met": pairs > 0 and not misses,
      "checked": pairs, "misses": misses})

  # 4. per-channel at least 40x faster than TF at 16M float32.
  rows = [idx[(c.key, "float32", "16M")] for c in cases
          if c.per_channel and (c.key, "float32", "16M") in idx]
  # The most any kernel can gain is TF's time / the traffic bound: where that
  # is under the target (TF already near the bound), say so.
  misses = [(r["label"], r["speedup"], r["tf"]["median_s"] / r["bound_s"])
            for r in rows if r["speedup"] < TARGET_PER_CHANNEL]
  capped = sum(1 for _, _, cap in misses if cap < TARGET_PER_CHANNEL)
  targets.append({
      "target": f"Eager mode: per-channel ops at least "
                f"{TARGET_PER_CHANNEL:.0f}x faster than TF's at 16M values "
                f"(float32)",
      "evaluated": bool(rows), "met": bool(rows) and not misses,
      "checked": len(rows),
      "misses": [f"{l}: {v:.1f}x (the traffic bound allows {cap:.1f}x)"
                 for l, v, cap in misses],
      "note": (f"{capped} of the misses cannot reach "
               f"{TARGET_PER_CHANNEL:.0f}x in this run even at the traffic "
               "bound: TF's time there is under "
               f"{TARGET_PER_CHANNEL:.0f}x the bound" if capped else "")})
  return targets


def headline_rows(results, cases):
  idx = index_results(results)
  rows = []
  for c in cases:
    r = idx.get((c.key, "float32", "16M"))
    if not r:
      continue
    # One verdict per target, so a reader sees which one a row misses.
    ok = {"bound": r["x_bound"] <= TARGET_BOUND,
          "tf": r["ours_over_tf"] <= 1.0,
          "per_channel": (r["speedup"] >= TARGET_PER_CHANNEL) if c.per_channel else None}
    rows.append((c, r, ok))
  return rows


def headline_markdown(results, cases):
  rows = headline_rows(results, cases)
  if not rows:
    return ""
  def mark(v):
    return "-" if v is None else ("yes" if v else "NO")
  lines = ["| op | TF | tf_qdq | speedup | x traffic bound | "
           f"<= {TARGET_BOUND}x bound | >= TF | "
           f">= {TARGET_PER_CHANNEL:.0f}x TF (per channel) |",
           "|---|---:|---:|---:|---:|:---:|:---:|:---:|"]
  for c, r, ok in rows:
    label = c.label + (f" ({c.tf_note})" if c.tf_note else "")
    lines.append(
        f"| {label} | {r['tf']['median_s'] * 1e3:.2f} ms | "
        f"{r['ours']['median_s'] * 1e3:.2f} ms | {r['speedup']:.1f}x | "
        f"{r['x_bound']:.2f}x ({r['factor']:.1f}x floor) | "
        f"{mark(ok['bound'])} | {mark(ok['tf'])} | {mark(ok['per_channel'])} |")
  return "\n".join(lines)


# Why the targets this suite reports as missed are missed: what the profiles
# showed and what was tried (docs/performance.md has the method and the full
# history). Static text: it describes the kernels, not one run's numbers.
MISS_NOTES = [
    "**Per-channel FakeQuant, forward and gradient, 16M (graph mode): met "
    "in this run, closest to the line on a loaded machine.** Both were "
    "compute-bound (callgrind, 1M values, one thread, AVX path, "
    "instructions per element; a copy: 0.62). Forward 3.03 -> 1.99 (1.82 "
    "without a min == max == 0 channel): tiles of 4 rows that load each "
    "channel's constants once, a loop without the zero-channel selects, an "
    "AVX-512 clone behind a run time check, streaming stores for outputs of "
    "16 MB and more. Gradient 6.61 -> 5.52 on the compiled AVX loop, then "
    "an AVX-512 intrinsics loop that keeps each channel's two double sums "
    "in registers across 4 rows and stages nothing (~1.9 instructions per "
    "element, counted from its code: valgrind has no AVX-512): 16M, one "
    "thread, 27 -> 19 ms; two threads ~16 -> ~11.5 ms; 1M in cache 2.0 -> "
    "1.0 ms (harness). Same additions in the same order, so the same bits "
    "as the AVX path (hashed over NaN, inf, denormal, -0 data, 1 and 2 "
    "threads; `TF_QDQ_NO_AVX512=1` runs the AVX path, and cc-test runs "
    "the loop tests both ways). When another process holds one of the 2 "
    "cores, the op runs compute-bound on one core while the floor (a copy) "
    "stays memory-bound: earlier runs under load measured 1.04-1.43x.",
    "**QDQ per-channel (last axis), computed range, 16M.** Two passes (the "
    "range, then the quantizer): 2.95 instructions per element. Streaming "
    "stores removed the output's read-for-ownership. Not done: row tiles "
    "for its quantizer loop (1.87 instructions per element with a given "
    "range); a row-tile helper shared with the FakeQuant loop, written "
    "with lambdas, did not vectorise with GCC 12 (15 instructions per "
    "element on the FakeQuant forward) and was reverted.",
    "**Per-tensor ops at 1M and 16M against TF (1.00-1.08x TF's time).** "
    "The per-tensor loops are copies of TF's at the memory floor: in the "
    "tables both contenders sit at 0.8-1.07x the traffic bound, so these "
    "rows are ties of two memory-bound loops, not compute. Between processes the "
    "floor itself moved from 4.7 to 6.4 ms on this shared machine (A/B "
    "pairs with TF_QDQ_NO_STREAM=1, 05:18 UTC: ours/TF 0.96-1.03 with "
    "streaming stores, 0.98-1.01 without), which a 0.6 s case with 11 "
    "rounds does not average out.",
    "**1K eager, the FakeQuant ops (1.0-1.15x TF).** TF's eager runtime "
    "charges a type attr: a scratch op library with one kernel registered "
    "twice, with and without `T`, measured 6.04-6.28 us with `T` and "
    "5.71-5.76 us without, through `TFE_Py_FastPathExecute` (an extra int "
    "attr: +0.09 us; an allowed-type list, a default or a namespaced name: "
    "no difference). TF's FakeQuant ops have no `T`; ours keep it (graphs "
    "and SavedModels name it). The Python layer was trimmed (the fast path "
    "called inline: -0.3 us; exact QDQ attrs skip TF's make_*: -1.0 us). "
    "Then float-only twins of the FakeQuant ops without `T` "
    "(TfQdq>...Float), which the eager fast path runs for float32: ours/TF "
    "over 12 alternating processes per side went 1.12 -> 1.08 (Args), 1.11 "
    "-> 1.07 (Vars), 1.12 -> 1.07 (Vars gradient); the twin itself is "
    "within 0.1-0.3 us of TF's op. What is left (0.6-0.9 us) is our Python "
    "layer above TF's generated wrapper: the attr checks, the eager guard "
    "and the dtype test that picks the twin.",
    "**16-bit at half of float32's time (eager).** The 16-bit loops did "
    "not change (no streaming stores: their outputs go through an L1 "
    "conversion buffer); float32 at 16M got faster with streaming stores, "
    "so the ratio moved away from 0.5.",
]


def write_markdown(path, meta, results, cases, sizes, dtypes, targets,
                   runtime_s, png_name, graph_results=(), graph_targets=()):
  m = meta["machine"]
  out = []
  out.append("# tf-qdq benchmarks\n")
  out.append("Generated by `bench/run_benchmarks.py` (`make bench`); do not "
             "edit by hand. Raw numbers: [benchmarks.json](benchmarks.json).\n")
  out.append("## Machine\n")
  load = m.get("loadavg_start")
  out.append(
      f"- CPU: {m['cpu']}, {m['nproc']} cores available"
      + (f" ({', '.join(m['simd'])})" if m["simd"] else "")
      + (f", {m['memory']} RAM" if m["memory"] else ""))
  if m.get("isa"):
    out.append(f"- ISA tf_qdq ran: {m['isa']}")
  out.append(f"- TensorFlow {m['tensorflow']}, tf_qdq {m['tf_qdq']} "
             f"(`{m['tf_qdq_path']}`), Python {m['python']}, NumPy "
             f"{m['numpy']}")
  out.append(f"- {m['date']}; suite ran {runtime_s:.0f} s"
             + (f"; load average at start {load[0]:.2f}, at end "
                f"{meta['loadavg_end'][0]:.2f}" if load and
                meta.get("loadavg_end") else ""))
  out.append("")
  out.append("## Method\n")
  out.append(
      "- Two modes, TF's default thread pools "
      f"(intra-op {m['intra_op_threads']}, inter-op {m['inter_op_threads']}: "
      "0 = one per core). **Graph mode** (float32; the headline): each "
      "contender is a `tf.function(autograph=False)` over prebuilt input "
      "tensors, called the way Keras calls a training step; TF's allocator "
      "hands the output buffer freed by the previous call back to the next, "
      "so the floor is the memory bandwidth. **Eager mode** (every dtype): "
      "plain calls. Each eager call allocates a fresh output and, at 16M "
      "values (64 MB), the allocator returns such a block to the OS and the "
      "next call page-faults it in again: the eager floor at 16M is several "
      "times the graph floor (compare the two 'floor' columns), and a kernel "
      "that is compute-bound up to that time looks 'at the bound'. The eager "
      "tables show what an interactive call costs; the graph tables what "
      "training sees.\n"
      "- Contenders, for each case on the same inputs: **tf_qdq** (the public "
      "`tf_qdq.*` function), **TF** (the built-in: `tf.raw_ops."
      "QuantizeAndDequantizeV4`/`V4Grad`, `tf.quantization.fake_quant_*`; "
      "per-channel QDQ with a given range uses `tf.raw_ops."
      "QuantizeAndDequantizeV3`, since TF 2.21's V2/V4 reject every such "
      "input) and the **floor** (`tf.raw_ops.AddV2(x, 1)` in the case's dtype: "
      "one read, one write). Range tensors are prebuilt, so no contender pays "
      "a Python-to-tensor conversion per call.\n"
      "- TF's built-ins exist for float32 only (QDQ also float64): in the "
      "float16/bfloat16 tables the TF column is **TF's float32 op on a "
      "pre-cast float32 copy** of the same values (the cast is not timed), "
      "while the floor and the traffic bound are in the 16-bit dtype (half "
      "the bytes).\n"
      "- The three contenders run interleaved in rounds whose order rotates "
      "(A B C, B C A, C A B, ...), after a warm-up, in one process; the floor "
      "runs in the same mode as the op it bounds. Each call is timed with "
      "`time.perf_counter` around the call: CPU eager kernels execute "
      "synchronously, so the call returns once the output is computed "
      "(checked: the floor's time scales with size, below). Python's GC is "
      "off while timing; outputs are freed outside the timed region. "
      "Reported: the median per contender.\n"
      "- Rounds per case (after the warm-up calls): " + "; ".join(
          f"{size}: at least {p[0]}, at most {p[1]}, ending once the case has "
          f"run about {p[2]:g} s"
          for size, p in meta.get("timing_plan", {}).items())
      + (" (--quick)" if meta["options"]["quick"] else "") + ".\n"
      "- Traffic bound = floor x 1.0 for one read and one write, floor x 1.5 "
      "for two reads and one write (a gradient: gradients + inputs; a "
      "computed range: one pass to find it, one to apply it). "
      "GB/s = the ideal traffic (elements x bytes per element x 2, or x 3) / "
      "median time; the TF column uses the same ideal bytes (of the row's "
      "dtype). Speedup = TF time / tf_qdq time.\n"
      "- Shapes: 1K = [16, 64], 64K = [64, 1024], 1M = [1024, 1024], "
      "16M = [16384, 1024]. Per-channel along the last axis has 64 channels "
      "at 1K and 1024 otherwise; along axis 0: 16, 64, 1024, 16384. "
      "8 bits, range [-1, 1], inputs uniform in [-1.2, 1.2].\n"
      "- tf_qdq writes float32 outputs of 16 MB and more (16M values) with "
      "streaming stores, which skip the read of each output line that a "
      "normal store does; the floor (TF's `x + 1`) stores normally. So at "
      "16M a one-pass op can take less than its traffic bound.")
  sanity = meta.get("floor_scaling")
  if sanity:
    out.append("- Scaling check (float32 floor medians, eager): " + ", ".join(
        f"{k}: {fmt_time(v)}" for k, v in sanity.items()) + ".")
  gsanity = meta.get("graph_floor_scaling")
  if gsanity:
    out.append("- The same in graph mode: " + ", ".join(
        f"{k}: {fmt_time(v)}" for k, v in gsanity.items()) + ".")
  out.append("")

  out.append("## Targets\n")
  for t in list(graph_targets) + list(targets):
    if not t["evaluated"]:
      status = "not evaluated (its cases were not run)"
    elif t["met"]:
      status = f"**met** ({t['checked']} checked)"
    else:
      status = (f"**NOT met**: {len(t['misses'])} of {t['checked']} miss")
    out.append(f"- {t['target']}: {status}.")
    for miss in t["misses"]:
      out.append(f"  - {miss}")
    if t.get("note"):
      out.append(f"  - ({t['note']})")
  out.append("")

  out.append("## Why the misses\n")
  out.extend(f"- {n}" for n in MISS_NOTES)
  out.append("")

  head_mode = "graph" if graph_results else "eager"
  head = headline_markdown(graph_results or results, cases)
  if head:
    out.append(f"## Headline: {head_mode} mode, float32, 16M values (64 MB)\n")
    out.append(head)
    out.append("\nOne column per target; '>= TF' compares medians, so "
               "1.00-1.05x rows are ties within this machine's noise. Why "
               "a target is missed: [performance.md](performance.md).\n")

  if png_name:
    out.append(f"![GB/s by op and size]({png_name})\n")

  # The QAT-step table is bench/qat_step.py's (it runs after this script in
  # `make bench` and rewrites this section); a re-render keeps what is there.
  qat = marked_section(path, QAT_STEP_START, QAT_STEP_END)
  out.append("## QAT training step (bench/qat_step.py)\n")
  out.append(QAT_STEP_START)
  out.append(qat or "Not run yet: `bench/qat_step.py` fills this section.")
  out.append(QAT_STEP_END + "\n")

  out.append("## Full results\n")
  for mode, res, dts in (("graph", graph_results, GRAPH_DTYPES),
                         ("eager", results, dtypes)):
    idx = index_results(res)
    for dt in dts:
      tf_head = "TF" if dt == "float32" else "TF (float32 op, f32 copy)"
      for size in sizes:
        rows = [idx[(c.key, dt, size)] for c in cases if (c.key, dt, size) in idx]
        if not rows:
          continue
        shape = SIZES[size]
        out.append(f"### {mode} mode, {dt}, {size} values {list(shape)}\n")
        out.append(f"| op | bound | floor | {tf_head} | tf_qdq | speedup | "
                   "x bound | tf_qdq GB/s | TF GB/s |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
          label = r["label"] + (f" ({r['tf_note']})" if r["tf_note"] else "")
          out.append(
              f"| {label} | {r['factor']:.1f}x | {fmt_time(r['floor']['median_s'])}"
              f" | {fmt_time(r['tf']['median_s'])} | "
              f"{fmt_time(r['ours']['median_s'])} | {fmt_x(r['speedup'])} | "
              f"{fmt_x(r['x_bound'])} | {fmt_gbs(r['ours_gbs'])} | "
              f"{fmt_gbs(r['tf_gbs'])} |")
        fl = statistics.median(r["floor_gbs"] for r in rows)
        note = ("" if size in ("1M", "16M") else " At this size per-call "
                "overhead dominates: 'x bound' says little, and can be below 1.")
        out.append(f"\nFloor: {fmt_gbs(fl)} GB/s (median over the rows).{note}\n")

  with open(path, "w") as f:
    f.write("\n".join(out).rstrip() + "\n")


def write_png(path, results, cases, sizes, dtypes):
  try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError:
    print("matplotlib is not installed: no PNG written "
          "(pip install -r requirements-dev.txt)", flush=True)
    return False
  idx = index_results(results)
  dts = [dt for dt in dtypes if any(r["dtype"] == dt for r in results)]
  szs = [s for s in sizes if any(r["size"] == s for r in results)]
  cs = [c for c in cases if any(r["op"] == c.key for r in results)]
  if not (dts and szs and cs):
    return False
  colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(szs)))
  fig, axes = plt.subplots(len(dts), 1, figsize=(max(10, 0.95 * len(cs) + 3),
                                                  4.2 * len(dts)),
                           squeeze=False, sharey=True)
  width = 0.8 / len(szs)
  xs = np.arange(len(cs))
  for ax, dt in zip(axes[:, 0], dts):
    for j, (size, color) in enumerate(zip(szs, colors)):
      ours, ref, floors = [], [], []
      for c in cs:
        r = idx.get((c.key, dt, size))
        ours.append(r["ours_gbs"] if r else np.nan)
        ref.append(r["tf_gbs"] if r and r["tf_gbs"] else np.nan)
        if r:
          floors.append(r["floor_gbs"])
      pos = xs - 0.4 + width * (j + 0.5)
      ax.bar(pos, ours, width, color=color, label=f"tf_qdq {size}")
      ax.scatter(pos, ref, marker="_", s=90, color="black", zorder=3,
                 label="TF built-in" if j == 0 else None)
      if floors:
        ax.axhline(statistics.median(floors), color=color, ls="--", lw=0.9,
                   label=f"floor {size}")
    ax.set_yscale("log")
    ax.yaxis.set_tick_params(labelleft=True)
    ax.set_ylabel("GB/s (ideal traffic / median time)")
    tf_desc = "" if dt == "float32" else " (TF: float32 op on a float32 copy)"
    ax.set_title(f"{dt}{tf_desc}")
    ax.set_xticks(xs)
    ax.set_xticklabels([c.key for c in cs], rotation=30, ha="right",
                       fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
  handles, labels = axes[0, 0].get_legend_handles_labels()
  order = sorted(range(len(labels)), key=lambda i: (
      0 if labels[i].startswith("tf_qdq") else
      1 if labels[i].startswith("floor") else 2, i))
  fig.suptitle("tf-qdq GB/s by op and size (bars); TF's built-in (black "
               "ticks); floor x + 1 (dashed)", fontsize=11)
  fig.legend([handles[i] for i in order], [labels[i] for i in order],
             fontsize=8, ncol=2 * len(szs) + 1, loc="upper center",
             bbox_to_anchor=(0.5, 0.975), frameon=False)
  fig.tight_layout(rect=(0, 0, 1, 0.95))
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True


README_START = "<!-- bench:headline:start -->"
README_END = "<!-- bench:headline:end -->"


def update_readme(path, results, cases):
  """Replaces the text between the markers in `path`, when both are there."""
  head = headline_markdown(results, cases)
  return bool(head) and replace_marked(path, README_START, README_END, head)


# ---- main --------------------------------------------------------------------


def parse_list(value, allowed, what):
  if value is None:
    return None
  items = [v.strip() for v in value.split(",") if v.strip()]
  out = []
  for item in items:
    hits = [a for a in allowed if fnmatch.fnmatch(a, item)]
    if not hits:
      sys.exit(f"unknown {what} {item!r}; choose from {', '.join(allowed)}")
    out.extend(h for h in hits if h not in out)
  return [a for a in allowed if a in out]


def main(argv=None):
  here = os.path.dirname(os.path.abspath(__file__))
  root = os.path.dirname(here)
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--quick", action="store_true",
                 help=f"only {' and '.join(QUICK_SIZES)}, fewer rounds")
  p.add_argument("--sizes", help=f"comma list of {', '.join(SIZES)}")
  p.add_argument("--ops", help="comma list of op keys (globs allowed): "
                 + ", ".join(c.key for c in CASES))
  p.add_argument("--dtypes", help=f"comma list of {', '.join(DTYPES)}")
  p.add_argument("--modes", help=f"comma list of {', '.join(MODES)} "
                 "(default both; graph mode runs float32 only)")
  p.add_argument("--out", default=os.path.join(root, "docs"),
                 help="output folder (default: docs/ of the checkout)")
  p.add_argument("--readme", default=os.path.join(root, "README.md"),
                 help="README whose headline table (between the markers "
                 f"{README_START} and {README_END}) is replaced, if it has "
                 "them; '' for none")
  p.add_argument("--list", action="store_true", help="list the cases and exit")
  p.add_argument("--render", metavar="JSON",
                 help="no timing: rewrite the outputs from an earlier run's "
                 "benchmarks.json")
  args = p.parse_args(argv)

  if args.list:
    for c in CASES:
      print(f"{c.key:28s} {c.factor:.1f}x floor  {c.label}")
    return 0

  if args.render:
    with open(args.render) as f:
      data = json.load(f)
    meta, results = data["meta"], data["results"]
    opts = meta["options"]
    cases = [c for c in CASES if c.key in opts["ops"]]
    write_outputs(args.out, args.readme, meta, results, cases, opts["sizes"],
                  opts["dtypes"], data.get("graph_results", []))
    return 0

  sizes = parse_list(args.sizes, list(SIZES), "size") or (
      QUICK_SIZES if args.quick else list(SIZES))
  dtypes = parse_list(args.dtypes, list(DTYPES), "dtype") or list(DTYPES)
  op_keys = parse_list(args.ops, [c.key for c in CASES], "op") or [
      c.key for c in CASES]
  cases = [c for c in CASES if c.key in op_keys]
  modes = parse_list(args.modes, MODES, "mode") or list(MODES)

  machine = machine_info()
  print(f"tf-qdq benchmarks: {machine['cpu']}, {machine['nproc']} cores, "
        f"TF {machine['tensorflow']}, tf_qdq from {machine['tf_qdq_path']}\n"
        f"ISA: {machine['isa']}; CPU flags {' '.join(machine['simd'])}",
        flush=True)
  graph_dtypes = [d for d in dtypes if d in GRAPH_DTYPES] if "graph" in modes else []
  eager_dtypes = dtypes if "eager" in modes else []
  total = len(cases) * len(sizes) * (len(graph_dtypes) + len(eager_dtypes))
  print(f"{total} cases: {len(cases)} ops x sizes {','.join(sizes)} x "
        f"graph: {','.join(graph_dtypes) or '-'}, eager: "
        f"{','.join(eager_dtypes) or '-'}", flush=True)

  t_start = time.perf_counter()
  results, graph_results = [], []
  n = 0
  for size in sizes:
    shape = SIZES[size]
    elems = shape[0] * shape[1]
    for mode, dts, out_list in (("graph", graph_dtypes, graph_results),
                                ("eager", eager_dtypes, results)):
      for dt_name in dts:
        dtype = DTYPES[dt_name]
        d = make_inputs(shape, dtype)
        floor = floor_fn(d)
        if mode == "graph":
          floor = tf.function(floor, autograph=False)
        itemsize = dtype.size
        plan = timing_plan(size, args.quick)
        for c in cases:
          n += 1
          ours, ref = c.build(d)
          if mode == "graph":
            ours = tf.function(ours, autograph=False)
            ref = tf.function(ref, autograph=False)
          t0 = time.perf_counter()
          s = time_interleaved({"ours": ours, "tf": ref, "floor": floor}, *plan)
          took = time.perf_counter() - t0
          so, st, sf = (summarize(s["ours"]), summarize(s["tf"]),
                        summarize(s["floor"]))
          ideal_bytes = elems * itemsize * (2 if c.factor == ONE_PASS else 3)
          bound_s = c.factor * sf["median_s"]
          r = {
              "mode": mode,
              "op": c.key, "label": c.label, "tf_note": c.tf_note,
              "dtype": dt_name, "size": size, "shape": list(shape),
              "elements": elems, "axis": c.axis,
              "channels": _channels(shape, c.axis), "per_channel": c.per_channel,
              "factor": c.factor, "ideal_bytes": ideal_bytes,
              "ours": so, "tf": st, "floor": sf,
              "bound_s": bound_s,
              "x_bound": so["median_s"] / bound_s,
              "speedup": st["median_s"] / so["median_s"],
              "ours_over_tf": so["median_s"] / st["median_s"],
              "ours_gbs": ideal_bytes / so["median_s"] / 1e9,
              "tf_gbs": ideal_bytes / st["median_s"] / 1e9,
              "floor_gbs": 2 * elems * itemsize / sf["median_s"] / 1e9,
              "rounds": so["n"], "case_seconds": took,
          }
          out_list.append(r)
          print(f"[{n:3d}/{total}] {mode:5s} {dt_name:8s} {size:>3s} {c.key:27s} "
                f"tf_qdq {fmt_time(so['median_s']):>9s}  "
                f"TF {fmt_time(st['median_s']):>9s}  "
                f"floor {fmt_time(sf['median_s']):>9s}  "
                f"speedup {r['speedup']:6.2f}x  {r['x_bound']:5.2f}x bound  "
                f"({so['n']} rounds, {took:.1f} s)", flush=True)
        del d, floor
        gc.collect()

  runtime = time.perf_counter() - t_start
  meta = {
      "machine": machine, "runtime_s": runtime, "loadavg_end": _loadavg(),
      "options": {"quick": args.quick, "sizes": sizes, "dtypes": dtypes,
                  "modes": modes, "ops": [c.key for c in cases]},
      "timing_plan": {size: timing_plan(size, args.quick) for size in sizes},
      "targets_spec": {"bound": TARGET_BOUND,
                       "per_channel_speedup": TARGET_PER_CHANNEL,
                       "half_ratio": TARGET_HALF},
  }
  meta["floor_scaling"] = floor_scaling(results, cases, sizes)
  meta["graph_floor_scaling"] = floor_scaling(graph_results, cases, sizes)
  write_outputs(args.out, args.readme, meta, results, cases, sizes, dtypes,
                graph_results)
  return 0


def floor_scaling(results, cases, sizes):
  """Size -> median float32 floor time over the cases (the scaling check)."""
  idx = index_results(results)
  scaling = {}
  for size in sizes:
    fl = [idx[(c.key, "float32", size)]["floor"]["median_s"] for c in cases
          if (c.key, "float32", size) in idx]
    if fl:
      scaling[size] = statistics.median(fl)
  return scaling


def write_outputs(out_dir, readme, meta, results, cases, sizes, dtypes,
                  graph_results=()):
  """Writes benchmarks.{md,json,png} under out_dir and prints the summary."""
  runtime = meta["runtime_s"]
  graph_results = list(graph_results)
  graph_targets = evaluate_graph_targets(graph_results, cases) if graph_results else []
  targets = evaluate_targets(results, cases, sizes, dtypes)
  os.makedirs(out_dir, exist_ok=True)
  png_name = "benchmarks.png"
  wrote_png = write_png(os.path.join(out_dir, png_name), results, cases,
                        sizes, dtypes)
  write_markdown(os.path.join(out_dir, "benchmarks.md"), meta, results, cases,
                 sizes, dtypes, targets, runtime,
                 png_name if wrote_png else None, graph_results, graph_targets)
  with open(os.path.join(out_dir, "benchmarks.json"), "w") as f:
    json.dump({"meta": meta, "targets": graph_targets + targets,
               "graph_results": graph_results, "results": results}, f, indent=1)
    f.write("\n")

  print(f"\nsuite ran {runtime:.0f} s; wrote {out_dir}/benchmarks.md, "
        f"benchmarks.json" + (", benchmarks.png" if wrote_png else ""))
  head = headline_markdown(graph_results or results, cases)
  if head:
    print(f"\nHeadline ({'graph' if graph_results else 'eager'} mode, "
          "float32, 16M values):\n" + head)
  print("\nTargets:")
  for t in graph_targets + targets:
    state = ("not evaluated" if not t["evaluated"] else
             "met" if t["met"] else f"NOT met ({len(t['misses'])} miss)")
    print(f"- {t['target']}: {state}")
    for miss in t["misses"]:
      print(f"    {miss}")
    if t.get("note"):
      print(f"    ({t['note']})")
  if readme and update_readme(readme, graph_results or results, cases):
    print(f"updated the headline table in {readme}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
