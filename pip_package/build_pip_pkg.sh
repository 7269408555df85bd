#!/usr/bin/env bash
# Turns the Bazel outputs into a wheel: stages the Python package, the op
# library and the TF version it was built against, then runs setup.py.
#   bazel-bin/pip_package/build_pip_pkg DEST_DIR
set -euo pipefail

DEST="${1:?usage: build_pip_pkg DEST_DIR}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"

# Runfiles: next to this script when run from bazel-bin.
RUNFILES="${RUNFILES_DIR:-$0.runfiles}/tf_qdq"
[ -d "$RUNFILES" ] || { echo "build_pip_pkg: runfiles not found at $RUNFILES" >&2; exit 1; }
PY="${PYTHON_BIN_PATH:-python3}"

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/tf_qdq"
cp "$RUNFILES"/tf_qdq/*.py "$STAGE/tf_qdq/"
rm -f "$STAGE/tf_qdq/_build_info.py"
install -m 0755 "$RUNFILES/cc/_tf_qdq_ops.so" "$STAGE/tf_qdq/"
cp "$RUNFILES/pip_package/setup.py" "$RUNFILES/pip_package/MANIFEST.in" "$RUNFILES/README.md" "$STAGE/"
# tf_qdq._core (pybind11, for this Python): built from the runfiles' sources.
PYTHON_BIN_PATH="$PY" bash "$RUNFILES/tools/build_core_module.sh" "$STAGE/tf_qdq" >/dev/null

TF_VERSION="$("$PY" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null | tail -1)"
printf '# Written by build_pip_pkg: what the op library was built against.\nTF_VERSION = "%s"\n' \
  "$TF_VERSION" > "$STAGE/tf_qdq/_build_info.py"

cd "$STAGE"
TF_QDQ_TF_VERSION="$TF_VERSION" "$PY" setup.py -q bdist_wheel --dist-dir "$DEST" >/dev/null
ls "$DEST"/tf_qdq-*.whl
