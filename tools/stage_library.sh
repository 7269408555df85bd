#!/usr/bin/env bash
# Copies the Bazel-built op library and tf_qdq._core (//cc/tf:_tf_qdq_ops.so,
# //cc/python:core_module) into a tf_qdq package directory and records the
# TensorFlow version they were built against (tf_qdq/_build_info.py), which the
# loader checks at import time.
#   tools/stage_library.sh [PACKAGE_DIR]   (default: ./tf_qdq)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/tf_qdq}"
PY="${PYTHON_BIN_PATH:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
SO="$ROOT/bazel-bin/cc/tf/_tf_qdq_ops.so"
[ -f "$SO" ] || { echo "stage_library: $SO not built (run make build)" >&2; exit 1; }
EXT="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
CORE="$ROOT/bazel-bin/cc/python/_core$EXT"
[ -f "$CORE" ] || { echo "stage_library: $CORE not built (run make build)" >&2; exit 1; }
install -m 0755 "$SO" "$DEST/_tf_qdq_ops.so"
rm -f "$DEST"/_core*.so
install -m 0755 "$CORE" "$DEST/_core$EXT"
TF_VERSION="$("$PY" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null | tail -1)"
cat > "$DEST/_build_info.py" <<PYEOF
# Written by tools/stage_library.sh: what the op library was built against.
TF_VERSION = "$TF_VERSION"
PYEOF
echo "staged $DEST/_tf_qdq_ops.so and _core$EXT (TensorFlow $TF_VERSION)"
