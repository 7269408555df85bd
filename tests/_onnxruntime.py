"""onnxruntime as the export tests run it: on this CPU and on an emulated
x86 CPU without AVX-512 and VNNI, each at its default graph optimizations
and with them off.

Why both levels: with the optimizations on, onnxruntime fuses each
DequantizeLinear -> Conv/MatMul -> QuantizeLinear into an integer kernel
(QLinearConv, QGemm), which is what users run; with ORT_DISABLE_ALL every op
runs in float between the Q/DQ pairs, the ONNX graph's own semantics.

Why an emulated CPU: which integer kernel onnxruntime picks depends on the
CPU. Without VNNI its uint8 x int8 kernels multiply with VPMADDUBSW, whose
int16 pair sums saturate; with VNNI (this machine, perhaps) they do not. So a
test on a VNNI CPU alone cannot see the bug that AVX2 users get. QEMU's user
mode emulator (Debian's qemu-user) runs this same Python and onnxruntime with
the CPUID of an AVX2 Haswell, so onnxruntime selects and runs its AVX2
kernels, instruction for instruction. It is slow, so it only runs inference,
in a subprocess that runs tf_qdq.keras.export.ort_runner as a script.
"""
import os
import shutil
import subprocess
import sys

import numpy as np

# The runner itself; run as a script, it imports only NumPy and onnxruntime.
from tf_qdq.keras.export import ort_runner

# An Intel Haswell: AVX2, FMA and F16C, no AVX-512, no VNNI; the CPU model
# QEMU 7.2's TCG emulates those instructions for.
EMULATED_CPU = "Haswell-v4"
EMULATOR = "qemu-x86_64"
LEVELS = ort_runner.LEVELS

CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni")


def cpu_flags():
  """The x86 features of this CPU that decide which kernels onnxruntime and
  tf_qdq run, as listed in /proc/cpuinfo."""
  try:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
      for line in f:
        if line.startswith("flags"):
          present = set(line.split(":", 1)[1].split())
          return tuple(flag for flag in CPU_FLAGS if flag in present)
  except OSError:
    pass
  return ()


def cpu_summary():
  """One line for test headers and reports."""
  flags = cpu_flags()
  vnni = "avx512_vnni" in flags or "avx_vnni" in flags
  kernels = ("VNNI: onnxruntime's uint8 x int8 kernels cannot saturate here"
             if vnni else "no VNNI: onnxruntime's uint8 x int8 kernels "
             "saturate int16 pair sums here")
  return f"CPU flags {' '.join(flags) or '(none read)'}; {kernels}"


def emulator():
  """The path of QEMU's x86-64 user-mode emulator; fails, naming the fix,
  where it is missing (make setup installs it)."""
  path = shutil.which(EMULATOR)
  if path is None:
    raise AssertionError(
        f"{EMULATOR} is not installed: the ONNX tests run onnxruntime on an "
        "emulated AVX2 CPU with it. `make setup` installs it "
        "(tools/install_system_deps.sh; on Debian: apt-get install qemu-user).")
  return path


def run(model_path, x, tmp_path, emulated=False):
  """{"default": outputs, "disable_all": outputs} of onnxruntime on `x`, in a
  subprocess: on this CPU, or with `emulated` on EMULATED_CPU."""
  inputs = os.path.join(tmp_path, "ort_inputs.npy")
  outputs = os.path.join(tmp_path, "ort_outputs.npz")
  np.save(inputs, np.asarray(x))
  command = [sys.executable, ort_runner.__file__, str(model_path), inputs,
             outputs]
  if emulated:
    command = [emulator(), "-cpu", EMULATED_CPU] + command
  done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                        check=False)
  stderr = "\n".join(line for line in done.stderr.splitlines()
                     if "TCG doesn't support requested feature" not in line)
  assert done.returncode == 0, stderr[-3000:]
  with np.load(outputs) as results:
    return {label: results[label] for label in LEVELS}
