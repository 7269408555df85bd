#!/usr/bin/env bash
# Builds the directory that clang-19 gets as --cuda-path for tf-qdq's CUDA kernels.
#
#   tools/install_cuda_toolchain.sh [DEST]     (default: build/cuda_toolkit, gitignored)
#   tools/install_cuda_toolchain.sh --check [DEST]   (also compiles a tiny kernel)
#   tools/install_cuda_toolchain.sh --with-cuobjdump [DEST]
#       also puts cuobjdump (PyPI nvidia-cuda-cuobjdump, CUDA 13.x; a diagnostic only,
#       clang never runs it) in DEST/bin, to list the cubins/PTX of a built library.
#
# DEST/
#   include/                  -> TF wheel's bundled CUDA 12.5 headers
#                                (<tf include>/third_party/gpus/cuda/include)
#   bin/ptxas                 from PyPI nvidia-cuda-nvcc-cu12==12.5.82 (copied)
#   nvvm/libdevice/libdevice.10.bc   from the same wheel (copied)
#   bin/fatbinary             -> tools/cuda/fatbinary (argument translator, LZ4)
#   bin/fatbinary.real        -> a CUDA 13 fatbinary: an installed toolkit's
#                                (/usr/local/cuda/bin/fatbinary) when it has --image3 and
#                                --compress-mode, else bin/fatbinary.pypi
#   bin/fatbinary.pypi        only without such a toolkit: nvidia/cu13/bin/fatbinary from
#                             PyPI nvidia-cuda-nvcc==13.0.88 (copied; the same file as the
#                             CUDA 13.0 toolkit's)
#   tf_qdq_toolkit.txt        what was installed from where
#
# No CUDA toolkit is needed: a plain Debian 12 machine gets every piece from TF's wheel
# and PyPI. clang reads the CUDA version (12.5) from include/cuda.h; it needs no
# version.txt. Nothing here comes from CUDA 13 except fatbinary, which only packs the
# cubins and PTX that clang and ptxas 12.5 produced. See docs/toolchain.md.
#
# Idempotent: the symlinks are refreshed (cheap) and a wheel is fetched only when what it
# supplies is missing or of another version. Takes ~0.1 s when nothing changed.
#
# Environment:
#   PYTHON_BIN_PATH        python whose TensorFlow supplies the CUDA headers (and whose pip
#                          fetches the wheels). Default: .venv/bin/python, else python3.
#   TF_QDQ_NVCC_PIP_SPEC   what to pip-install for ptxas/libdevice (default
#                          nvidia-cuda-nvcc-cu12==12.5.82; a local .whl path works too).
#   TF_QDQ_REAL_FATBINARY  the CUDA fatbinary to wrap. Default: the first of
#                          $CUDA_HOME/bin/fatbinary, /usr/local/cuda/bin/fatbinary and
#                          `fatbinary` on PATH that has --image3 and --compress-mode (as
#                          CUDA 13's has), else the one from TF_QDQ_FATBINARY_PIP_SPEC.
#   TF_QDQ_FATBINARY_PIP_SPEC  what to pip-install for fatbinary when no toolkit has one
#                          (default nvidia-cuda-nvcc==13.0.88; a local .whl path works too).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NVCC_VERSION="12.5.82"
PIP_SPEC="${TF_QDQ_NVCC_PIP_SPEC:-nvidia-cuda-nvcc-cu12==$NVCC_VERSION}"
FATBIN_PIP_SPEC="${TF_QDQ_FATBINARY_PIP_SPEC:-nvidia-cuda-nvcc==13.0.88}"
CPU_ONLY_HINT="(Only the GPU kernels need this toolchain: a CPU-only op library builds without it, e.g. make test BAZEL_CONFIG=)"

die() { echo "install_cuda_toolchain: error: $*" >&2; exit 1; }
note() { echo "install_cuda_toolchain: $*" >&2; }

CHECK=0
WITH_CUOBJDUMP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --check) CHECK=1; shift ;;
    --with-cuobjdump) WITH_CUOBJDUMP=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
DEST="${1:-$ROOT/build/cuda_toolkit}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# --- TensorFlow's CUDA headers (find_spec: no TF import, ~50 ms) -------------------------
PY="${PYTHON_BIN_PATH:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="python3"; fi
fi
TF_DIR="$("$PY" -c 'import importlib.util as u, os
s = u.find_spec("tensorflow")
print(os.path.dirname(s.origin) if s and s.origin else "")' 2>/dev/null || true)"
[ -n "$TF_DIR" ] || die "$PY cannot find tensorflow (set PYTHON_BIN_PATH, see docs/building.md)."
CUDA_INC="$TF_DIR/include/third_party/gpus/cuda/include"
[ -f "$CUDA_INC/cuda.h" ] || die "$CUDA_INC/cuda.h missing: this TensorFlow wheel has no CUDA headers."
CUDA_VERSION_NUM="$(sed -n 's/^#define CUDA_VERSION \([0-9]*\).*/\1/p' "$CUDA_INC/cuda.h" | head -1)"
[ -n "$CUDA_VERSION_NUM" ] || die "no CUDA_VERSION in $CUDA_INC/cuda.h"
CUDA_VERSION_STR="$((CUDA_VERSION_NUM / 1000)).$(((CUDA_VERSION_NUM % 1000) / 10))"
[ "$CUDA_VERSION_STR" = "${NVCC_VERSION%.*}" ] ||
  note "warning: TF's CUDA headers are $CUDA_VERSION_STR, ptxas/libdevice are $NVCC_VERSION."

PIP_PY="$PY"
"$PIP_PY" -m pip --version >/dev/null 2>&1 || PIP_PY=python3
pip_target() {  # DIR SPEC: pip install one wheel, no dependencies, into DIR
  "$PIP_PY" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
      --target "$1" "$2" >&2 || die "pip install $2 failed. $CPU_ONLY_HINT"
}

# --- the real fatbinary (CUDA 13's: an installed toolkit's, else PyPI's) -----------------
# The wrapper passes --image3 and --compress-mode=speed, so an installed fatbinary must take
# both: CUDA 13's does; CUDA 11.8's (Debian's nvidia-cuda-toolkit) has no --compress-mode.
usable_fatbinary() {
  local help
  help="$("$1" --help 2>/dev/null)" || return 1
  grep -q -- '--image3' <<<"$help" && grep -q -- '--compress-mode.*speed' <<<"$help"
}
REAL_FATBIN="${TF_QDQ_REAL_FATBINARY:-}"
FATBIN_FROM="TF_QDQ_REAL_FATBINARY"
if [ -n "$REAL_FATBIN" ]; then
  [ -x "$REAL_FATBIN" ] || die "TF_QDQ_REAL_FATBINARY=$REAL_FATBIN is not an executable."
  usable_fatbinary "$REAL_FATBIN" ||
    die "TF_QDQ_REAL_FATBINARY=$REAL_FATBIN has no --image3/--compress-mode (CUDA 13's has)."
else
  FATBIN_FROM="installed CUDA toolkit"
  for c in "${CUDA_HOME:-/usr/local/cuda}/bin/fatbinary" /usr/local/cuda/bin/fatbinary \
           "$(command -v fatbinary || true)"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    if usable_fatbinary "$c"; then REAL_FATBIN="$c"; break; fi
    note "not using $c: it has no --image3/--compress-mode (an older CUDA than 13)."
  done
fi
if [ -z "$REAL_FATBIN" ]; then
  # No CUDA 13 toolkit here: the fatbinary from CUDA 13.0's PyPI wheel (~37 MB, once).
  FATBIN_STAMP="$DEST/.fatbinary-wheel"
  if [ ! -x "$DEST/bin/fatbinary.pypi" ] ||
     [ "$(cat "$FATBIN_STAMP" 2>/dev/null || true)" != "$FATBIN_PIP_SPEC" ]; then
    note "no CUDA 13 toolkit installed; fetching fatbinary: pip install --no-deps $FATBIN_PIP_SPEC"
    pip_target "$WORK/fatbinary-wheel" "$FATBIN_PIP_SPEC"
    found="$(find "$WORK/fatbinary-wheel" -type f -path '*/bin/fatbinary' | head -1)"
    [ -n "$found" ] || die "$FATBIN_PIP_SPEC has no bin/fatbinary. $CPU_ONLY_HINT"
    mkdir -p "$DEST/bin"
    install -m 0755 "$found" "$DEST/bin/fatbinary.pypi"
    echo "$FATBIN_PIP_SPEC" > "$FATBIN_STAMP"
  fi
  REAL_FATBIN="$DEST/bin/fatbinary.pypi"
  usable_fatbinary "$REAL_FATBIN" ||
    die "$REAL_FATBIN (from $FATBIN_PIP_SPEC) does not run, or has no --image3/--compress-mode. $CPU_ONLY_HINT"
  FATBIN_FROM="$FATBIN_PIP_SPEC"
fi

# --- ptxas + libdevice from the PyPI wheel (the only slow step, done once) --------------
STAMP="$DEST/.nvcc-wheel"
if [ ! -x "$DEST/bin/ptxas" ] || [ ! -f "$DEST/nvvm/libdevice/libdevice.10.bc" ] ||
   [ "$(cat "$STAMP" 2>/dev/null || true)" != "$PIP_SPEC" ]; then
  note "fetching ptxas and libdevice: pip install --no-deps $PIP_SPEC"
  pip_target "$WORK/nvcc-wheel" "$PIP_SPEC"
  W="$WORK/nvcc-wheel/nvidia/cuda_nvcc"
  [ -x "$W/bin/ptxas" ] && [ -f "$W/nvvm/libdevice/libdevice.10.bc" ] ||
    die "$PIP_SPEC has no bin/ptxas or nvvm/libdevice/libdevice.10.bc under nvidia/cuda_nvcc/."
  mkdir -p "$DEST/bin" "$DEST/nvvm/libdevice"
  install -m 0755 "$W/bin/ptxas" "$DEST/bin/ptxas"
  install -m 0644 "$W/nvvm/libdevice/libdevice.10.bc" "$DEST/nvvm/libdevice/libdevice.10.bc"
  echo "$PIP_SPEC" > "$STAMP"
fi

# --- symlinks (always refreshed: the venv or the repo may have moved) -------------------
mkdir -p "$DEST/bin"
ln -sfn "$CUDA_INC" "$DEST/include"
ln -sfn "$ROOT/tools/cuda/fatbinary" "$DEST/bin/fatbinary"
ln -sfn "$REAL_FATBIN" "$DEST/bin/fatbinary.real"

if [ "$WITH_CUOBJDUMP" = 1 ] && [ ! -x "$DEST/bin/cuobjdump" ]; then
  CUOBJDUMP_SPEC="${TF_QDQ_CUOBJDUMP_PIP_SPEC:-nvidia-cuda-cuobjdump}"
  note "fetching cuobjdump: pip install --no-deps $CUOBJDUMP_SPEC"
  pip_target "$WORK/cuobjdump-wheel" "$CUOBJDUMP_SPEC"
  found="$(find "$WORK/cuobjdump-wheel" -type f -name cuobjdump | head -1)"
  [ -n "$found" ] || die "$CUOBJDUMP_SPEC has no cuobjdump."
  install -m 0755 "$found" "$DEST/bin/cuobjdump"
fi

INFO="# Written by tools/install_cuda_toolchain.sh: clang --cuda-path for tf-qdq.
cuda_headers=$CUDA_INC (CUDA $CUDA_VERSION_STR, from TensorFlow at $TF_DIR)
ptxas_libdevice=$PIP_SPEC
fatbinary=$ROOT/tools/cuda/fatbinary -> $REAL_FATBIN ($FATBIN_FROM)"
[ "$(cat "$DEST/tf_qdq_toolkit.txt" 2>/dev/null || true)" = "$INFO" ] ||
  echo "$INFO" > "$DEST/tf_qdq_toolkit.txt"

if [ "$CHECK" = 1 ]; then
  CLANG="${TF_QDQ_CUDA_CLANG:-$(command -v clang-19 || echo /usr/lib/llvm-19/bin/clang)}"
  [ -x "$CLANG" ] || die "clang-19 not found (tools/install_system_deps.sh installs it)."
  T="$WORK/check"
  mkdir -p "$T"
  printf '__global__ void k(float* p) { p[threadIdx.x] *= 2.0f; }\n' > "$T/k.cu"
  # The CCCL headers (nv/target, cuda/std, cub, thrust) live beside include/, not in it:
  # every compile needs -isystem for them (build_defs/cuda.bzl adds them).
  "$CLANG" -x cuda --cuda-path="$DEST" --cuda-gpu-arch=sm_70 --cuda-gpu-arch=sm_90 \
      --no-cuda-include-ptx=sm_70 -Wno-unknown-cuda-version \
      -isystem "$CUDA_INC/../libcudacxx/include" -c "$T/k.cu" -o "$T/k.o" ||
    die "clang could not compile a kernel with --cuda-path=$DEST. $CPU_ONLY_HINT"
  note "check passed: $("$CLANG" --version | head -1) compiles CUDA with --cuda-path=$DEST"
fi
echo "$DEST"
