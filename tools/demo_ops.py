"""Runs every tf-qdq op on sample data beside TensorFlow's built-in op and
prints whether the two agree bit for bit.

    python tools/demo_ops.py

Rows marked "deviation" are where tf-qdq deliberately differs from TF
(docs/semantics.md D2 and D7): the comparison there is against the documented
semantics.
"""
import math

import numpy as np
import tensorflow as tf

import tf_qdq


def same_bits(a, b):
  a, b = np.asarray(a), np.asarray(b)
  if a.shape != b.shape or a.dtype != b.dtype:
    return False
  nan = np.isnan(a.astype(np.float64))
  if not np.array_equal(nan, np.isnan(b.astype(np.float64))):
    return False
  return a[~nan].tobytes() == b[~nan].tobytes()


def main():
  rng = np.random.default_rng(2021)
  x = (rng.standard_normal(4096) * 2).astype(np.float32)
  x[:8] = [0.5, 1.5, 2.5, -0.5, -0.0, np.nan, np.inf, -np.inf]
  g = rng.standard_normal(4096).astype(np.float32)
  w = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
  ch_min = -rng.random(16).astype(np.float32)
  ch_max = rng.random(16).astype(np.float32) + 0.1
  q = tf.quantization

  rows = [
      ("QuantizeAndDequantizeV4 range given", "parity",
       tf_qdq.quantize_and_dequantize_v4(x, -1.0, 1.5, range_given=True),
       tf.raw_ops.QuantizeAndDequantizeV4(input=x, input_min=-1.0, input_max=1.5, range_given=True)),
      ("QuantizeAndDequantizeV4 HALF_UP, 4 bits", "parity",
       tf_qdq.quantize_and_dequantize_v4(x, 0., 0., num_bits=4, round_mode="HALF_UP"),
       tf.raw_ops.QuantizeAndDequantizeV4(input=x, input_min=0., input_max=0., num_bits=4,
                                          round_mode="HALF_UP")),
      ("quantize_and_dequantize_v2 per channel", "parity",
       tf_qdq.quantize_and_dequantize_v2(w, 0., 0., axis=-1),
       q.quantize_and_dequantize_v2(tf.constant(w), tf.zeros(16), tf.zeros(16), axis=-1)),
      ("QuantizeAndDequantizeV4Grad", "parity",
       tf_qdq.quantize_and_dequantize_v4_grad(g, x, -1.0, 1.0)[0],
       tf.raw_ops.QuantizeAndDequantizeV4Grad(gradients=g, input=x, input_min=-1.0,
                                              input_max=1.0)[0]),
      ("FakeQuantWithMinMaxArgs", "parity",
       tf_qdq.fake_quant_with_min_max_args(x, -1.0, 2.0, num_bits=4),
       q.fake_quant_with_min_max_args(x, -1.0, 2.0, num_bits=4)),
      ("FakeQuantWithMinMaxArgsGradient", "parity",
       tf_qdq.fake_quant_with_min_max_args_gradient(g, x, -1.0, 2.0),
       q.fake_quant_with_min_max_args_gradient(g, x, -1.0, 2.0)),
      ("FakeQuantWithMinMaxVars", "parity",
       tf_qdq.fake_quant_with_min_max_vars(x, -0.1, 0.9),
       q.fake_quant_with_min_max_vars(x, -0.1, 0.9)),
      ("FakeQuantWithMinMaxVarsGradient (wrt input)", "parity",
       tf_qdq.fake_quant_with_min_max_vars_gradient(g, x, -0.1, 0.9)[0],
       q.fake_quant_with_min_max_vars_gradient(g, x, -0.1, 0.9)[0]),
      ("FakeQuantWithMinMaxVarsPerChannel", "parity",
       tf_qdq.fake_quant_with_min_max_vars_per_channel(w, ch_min, ch_max),
       q.fake_quant_with_min_max_vars_per_channel(w, ch_min, ch_max)),
      ("FakeQuantWithMinMaxVarsPerChannelGradient (wrt input)", "parity",
       tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(w, w, ch_min, ch_max)[0],
       q.fake_quant_with_min_max_vars_per_channel_gradient(w, w, ch_min, ch_max)[0]),
      ("FakeQuantWithMinMaxVars, half (TF: float32 then cast)", "deviation",
       tf_qdq.fake_quant_with_min_max_vars(x.astype(np.float16), -1.0, 2.0),
       tf.cast(q.fake_quant_with_min_max_vars(x.astype(np.float16).astype(np.float32),
                                              -1.0, 2.0), tf.float16)),
  ]

  # Sums: tf-qdq accumulates in double in a fixed order; compare with fsum.
  # [-0.1, 0.9] at 8 bits nudges to zero point 25 (docs/semantics.md §4.4).
  x_finite = np.nan_to_num(x, nan=0.0, posinf=9.0, neginf=-9.0)
  scale = (np.float32(0.9) - np.float32(-0.1)) / np.float32(255)
  nudged_min = (np.float32(0) - np.float32(25)) * scale
  below = g[x_finite < nudged_min].astype(np.float64)
  fsum = np.float32(math.fsum(below))
  ours_sum = tf_qdq.fake_quant_with_min_max_vars_gradient(
      g, x_finite, -0.1, 0.9)[1]

  print(f"tf-qdq {tf_qdq.__version__} with TensorFlow {tf.__version__}\n")
  width = max(len(r[0]) for r in rows) + 2
  print(f"{'op':<{width}}{'compared with':<34}{'bit-equal':>9}")
  print("-" * (width + 43))
  all_equal = True
  for name, kind, ours, theirs in rows:
    ok = same_bits(ours, theirs)
    all_equal &= ok
    ref = "TF built-in" if kind == "parity" else "TF float32 op, cast (deviation)"
    print(f"{name:<{width}}{ref:<34}{'yes' if ok else 'NO':>9}")
  ok = same_bits(ours_sum, fsum)
  all_equal &= ok
  print(f"{'FakeQuantWithMinMaxVarsGradient (wrt min)':<{width}}"
        f"{'math.fsum (deviation)':<34}{'yes' if ok else 'NO':>9}")
  print("\nall bit-equal" if all_equal else "\nMISMATCH")
  return 0 if all_equal else 1


if __name__ == "__main__":
  raise SystemExit(main())
