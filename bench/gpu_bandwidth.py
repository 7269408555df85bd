"""GPU bandwidth of tf-qdq's CUDA kernels, without TensorFlow.

Runs tf_qdq.core.cuda_benchmark (a CUDA build of the core module) on large
float32 tensors, per tensor and per channel, forward and gradient, and reports
each kernel's effective bandwidth as a fraction of a device-to-device copy of
the same bytes measured in the same run. Writes docs/gpu.md's table to stdout
(or to --out).

    # on a GPU machine with nvcc, pybind11 and NumPy (no TensorFlow needed):
    cmake -S cc/python -B build/core -DTF_QDQ_WITH_CUDA=ON \\
          -DCMAKE_CUDA_ARCHITECTURES=90 \\
          -Dpybind11_DIR=$(python -m pybind11 --cmakedir)
    cmake --build build/core -j && cp build/core/_core*.so tf_qdq/
    python -m pytest -q tests/core/test_core_gpu.py
    python bench/gpu_bandwidth.py --out docs/gpu_measured.md
"""
import argparse
import datetime
import subprocess

from tf_qdq import core

CASES = [
    # (label, op, channels)
    ("QDQ V4 per tensor, computed range", "qdq", 1),
    ("QDQ V4 per tensor, range given", "qdq_given", 1),
    ("QDQ V4 per channel (1024, last axis), computed", "qdq", 1024),
    ("FakeQuantWithMinMaxVars(PerChannel) forward, per tensor", "fake_quant",
     1),
    ("FakeQuantWithMinMaxVarsPerChannel forward, 1024 channels",
     "fake_quant", 1024),
    ("FakeQuantWithMinMaxVarsGradient, per tensor", "fake_quant_gradient",
     1),
    ("FakeQuantWithMinMaxVarsPerChannelGradient, 1024 channels",
     "fake_quant_gradient", 1024),
]


def gpu_name():
  try:
    return subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version",
         "--format=csv,noheader"],
        capture_output=True, text=True, timeout=30).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return "unknown GPU"


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="16777216,67108864",
                      help="comma-separated element counts (float32)")
  parser.add_argument("--reps", type=int, default=30)
  parser.add_argument("--out", default=None, help="write the markdown here")
  args = parser.parse_args()
  if not core.with_cuda:
    raise SystemExit("tf_qdq.core was built without CUDA (see this file's "
                     "docstring)")
  lines = [f"GPU: {gpu_name()}; {datetime.date.today()}; median of "
           f"{args.reps} runs, CUDA events; bandwidth = the op's ideal bytes "
           "/ time, as a fraction of a device-to-device copy of the same "
           "tensor measured in the same run.", "",
           "| op | values | op ms | copy ms | op GB/s | "
           "fraction of copy bandwidth |",
           "|---|---:|---:|---:|---:|---:|"]
  for size in (int(s) for s in args.sizes.split(",")):
    for label, op, channels in CASES:
      r = core.cuda_benchmark(op, size, channels=channels, reps=args.reps)
      copy_gbs = 2 * 4 * size / r["copy_ms"] / 1e6
      op_gbs = r["op_bytes"] / r["op_ms"] / 1e6
      lines.append(f"| {label} | {size:,} | {r['op_ms']:.3f} | "
                   f"{r['copy_ms']:.3f} | {op_gbs:.0f} | "
                   f"{op_gbs / copy_gbs:.2f} |")
      print(lines[-1], flush=True)
  text = "\n".join(lines) + "\n"
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      f.write(text)
  else:
    print(text)


if __name__ == "__main__":
  main()
