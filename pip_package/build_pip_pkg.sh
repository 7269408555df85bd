#!/usr/bin/env bash
# Turns the Bazel outputs into a wheel: stages the Python package, the op
# library, tf_qdq._core and the TF version they were built against, then builds
# the wheel through PEP 517 (pyproject.toml: setuptools, with setup.py for the
# TF pin and the binary tag).
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
# The package with its subpackages (tf_qdq/_xla, tf_qdq/keras/...): every .py
# under tf_qdq/, at its relative path.
(cd "$RUNFILES" && find -L tf_qdq -name "*.py" -print0 | xargs -0 -I{} install -D -m 0644 {} "$STAGE/{}")
rm -f "$STAGE/tf_qdq/_build_info.py"
install -m 0755 "$RUNFILES/cc/tf/_tf_qdq_ops.so" "$STAGE/tf_qdq/"
# tf_qdq._core, built by Bazel for the configured Python (//cc/python:core_module).
EXT="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
CORE="$RUNFILES/cc/python/_core$EXT"
[ -f "$CORE" ] || {
  echo "build_pip_pkg: $CORE missing: //cc/python:core_module was built for another" \
       "Python than $PY (re-run ./configure.sh with PYTHON_BIN_PATH=$PY)" >&2
  exit 1
}
install -m 0755 "$CORE" "$STAGE/tf_qdq/"
cp "$RUNFILES/pip_package/setup.py" "$RUNFILES/pip_package/MANIFEST.in" "$RUNFILES/README.md" \
   "$RUNFILES/pyproject.toml" "$RUNFILES/LICENSE" "$STAGE/"

TF_VERSION="$("$PY" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null | tail -1)"
printf '# Written by build_pip_pkg: what the op library was built against.\nTF_VERSION = "%s"\n' \
  "$TF_VERSION" > "$STAGE/tf_qdq/_build_info.py"

cd "$STAGE"
# PEP 517 build with the venv's setuptools (no build isolation: offline, and the
# staged tree is all there is to build).
TF_QDQ_TF_VERSION="$TF_VERSION" "$PY" -m pip wheel -q --no-deps --no-build-isolation \
  --wheel-dir "$DEST" . >/dev/null
ls "$DEST"/tf_qdq-*.whl
