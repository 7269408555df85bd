#!/usr/bin/env bash
# Builds tf_qdq._core (cc/python/core_module.cc, CPU kernels) with g++ for the
# given Python, into a package directory. No TensorFlow involved.
#   tools/build_core_module.sh [PACKAGE_DIR]   (default: ./tf_qdq)
# With nvcc and CUDA, use cc/python/CMakeLists.txt (-DTF_QDQ_WITH_CUDA=ON).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/tf_qdq}"
PY="${PYTHON_BIN_PATH:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
read -r EXT PYINC PBINC < <("$PY" -c 'import sysconfig, pybind11
print(sysconfig.get_config_var("EXT_SUFFIX"), sysconfig.get_paths()["include"], pybind11.get_include())')
OUT="$DEST/_core$EXT"
SRCS=("$ROOT"/cc/python/core_module.cc "$ROOT"/cc/core/*.h)
if [ -f "$OUT" ] && [ -z "$(find "${SRCS[@]}" -newer "$OUT" 2>/dev/null)" ]; then
  echo "up to date: $OUT"; exit 0
fi
# -ffp-contract=off: every step separately rounded, as in TF's kernels.
# -mavx: TF 2.21's own baseline; vector rint/floor (see .bazelrc).
${CXX:-g++} -O3 -mavx -ffp-contract=off -fno-trapping-math -std=c++17 -shared -fPIC -fvisibility=hidden \
  -I"$ROOT" -I"$PYINC" -I"$PBINC" "$ROOT/cc/python/core_module.cc" -o "$OUT"
echo "built $OUT"
