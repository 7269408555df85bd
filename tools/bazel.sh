#!/usr/bin/env bash
# Runs the project's Bazel: Debian's offline Bazel 4.2.3 (bazel-4), driven by bazelisk.
#   tools/bazel.sh build //...        (all arguments are passed through)
#
# bazelisk cannot download Bazel here, but it runs a local binary when USE_BAZEL_VERSION
# is an absolute path. Without bazelisk, falls back to bazel-4, then to plain `bazel`.
# Overrides: TF_QDQ_BAZEL (the Bazel binary), TF_QDQ_BAZELISK (the bazelisk binary).
# Never rename this file to tools/bazel: bazelisk and Bazel launchers exec a
# workspace's tools/bazel themselves, and it would call itself.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bazel_bin="${TF_QDQ_BAZEL:-$(command -v bazel-4 || true)}"
if [ -n "$bazel_bin" ] && [[ "$bazel_bin" != /* ]]; then
  bazel_bin="$(command -v "$bazel_bin" || true)"
fi

bazelisk_bin="${TF_QDQ_BAZELISK:-}"
if [ -z "$bazelisk_bin" ]; then
  for c in /opt/tf-qdq-bazelisk/bin/bazelisk "$(command -v bazelisk || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then bazelisk_bin="$c"; break; fi
  done
fi

if [ -n "$bazelisk_bin" ] && [ -n "$bazel_bin" ] && [ -x "$bazel_bin" ]; then
  export USE_BAZEL_VERSION="$bazel_bin"
  exec "$bazelisk_bin" "$@"
fi

if [ -n "$bazel_bin" ] && [ -x "$bazel_bin" ]; then
  echo "tools/bazel.sh: note: bazelisk not found (tools/install_system_deps.sh installs it);" \
       "running $bazel_bin directly." >&2
  exec "$bazel_bin" "$@"
fi

if command -v bazel >/dev/null 2>&1; then
  echo "tools/bazel.sh: note: neither bazelisk+bazel-4 nor bazel-4 found; running plain" \
       "'bazel' ($(command -v bazel)). tf-qdq is built and tested with Bazel 4.2.3" \
       "(Debian bazel-bootstrap, see tools/install_system_deps.sh)." >&2
  exec bazel "$@"
fi

echo "tools/bazel.sh: error: no Bazel found. Run tools/install_system_deps.sh" \
     "(installs Debian's bazel-bootstrap and bazelisk)." >&2
exit 127
