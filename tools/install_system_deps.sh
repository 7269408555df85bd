#!/usr/bin/env bash
# Installs the system toolchain tf-qdq builds with, on a fresh Debian 12 machine (a
# minimal one is enough: `make`, `git` and this script's apt-get do the rest).
#   - bazel-bootstrap: Debian's offline Bazel 4.2.3 (no newer Bazel is reachable here),
#     with its Java runtime;
#   - clang-19, lld-19: the CUDA compiler TF itself uses (nvcc 13 objects must not ship,
#     see docs/toolchain.md); libclang-rt-19-dev: its libFuzzer (make cc-fuzz);
#   - npm (and nodejs), for bazelisk, which drives the local Bazel through
#     USE_BAZEL_VERSION;
#   - g++, python3-venv and python3-dev (Python.h for the pybind11 module), when the
#     python3 that makes the .venv lacks them;
#   - qemu-user, for the tests: onnxruntime on an emulated CPU without AVX-512/VNNI.
# The CUDA pieces (headers, ptxas, libdevice, fatbinary) are not system packages: they
# come from TF's wheel and PyPI (tools/install_cuda_toolchain.sh); no CUDA toolkit needed.
# Runs apt-get as root, or through sudo. Idempotent: skips what is already there, and
# calls apt-get only when something is missing.
set -euo pipefail

die() { echo "install_system_deps: error: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: run this script as root."
  SUDO="sudo"
fi

py_has() { python3 -c "$1" >/dev/null 2>&1; }
PY_INC_CHECK='import os, sysconfig; assert os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h"))'

need_apt=()
command -v bazel-4 >/dev/null 2>&1 || need_apt+=(bazel-bootstrap)
command -v clang-19 >/dev/null 2>&1 || need_apt+=(clang-19)
command -v lld-19 >/dev/null 2>&1 || need_apt+=(lld-19)
# libFuzzer and the sanitizer runtimes for clang-19 (make cc-fuzz, cc/tests).
[ -f /usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.fuzzer-x86_64.a ] ||
  need_apt+=(libclang-rt-19-dev)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
# QEMU's user-mode emulator: the ONNX export tests run onnxruntime on an emulated
# AVX2 CPU without VNNI, whose int8 kernels differ from a VNNI CPU's
# (tests/_onnxruntime.py).
command -v qemu-x86_64 >/dev/null 2>&1 || need_apt+=(qemu-user)
BAZELISK_PREFIX=/opt/tf-qdq-bazelisk
if [ ! -x "$BAZELISK_PREFIX/bin/bazelisk" ] && ! command -v npm >/dev/null 2>&1; then
  need_apt+=(npm)
fi
if ! command -v python3 >/dev/null 2>&1; then
  need_apt+=(python3 python3-venv python3-dev)
else
  py_has 'import ensurepip, venv' || need_apt+=(python3-venv)
  py_has "$PY_INC_CHECK" || need_apt+=(python3-dev)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 ||
    die "missing ${need_apt[*]}, and no apt-get to install them (tf-qdq is set up on Debian 12)."
  echo "install_system_deps: apt-get install ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${need_apt[@]}" >/dev/null
fi
py_has "$PY_INC_CHECK" ||
  die "$(command -v python3) has no Python.h: install its headers (Debian: python3-dev)."

# npm's package also ships a `bazel` shim that would collide with Debian's /usr/bin/bazel,
# so it gets a prefix of its own; tools/bazel.sh knows where to look.
if [ ! -x "$BAZELISK_PREFIX/bin/bazelisk" ]; then
  $SUDO npm install -g --silent --no-fund --no-audit --prefix "$BAZELISK_PREFIX" \
      @bazel/bazelisk@1.28
fi
echo "system deps: $(clang-19 --version | head -1); bazelisk at $BAZELISK_PREFIX/bin/bazelisk"
