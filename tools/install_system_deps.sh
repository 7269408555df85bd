#!/usr/bin/env bash
# Installs the system toolchain tf-qdq builds with, on a fresh Debian 12 machine.
#   - bazel-bootstrap: Debian's offline Bazel 4.2.3 (no newer Bazel is reachable here);
#   - clang-19: the CUDA compiler TF itself uses (nvcc 13 objects must not ship, see
#     docs/toolchain.md);
#   - bazelisk from npm, which drives the local Bazel through USE_BAZEL_VERSION.
# Idempotent: skips what is already there.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v bazel-4 >/dev/null 2>&1 || need_apt+=(bazel-bootstrap)
command -v clang-19 >/dev/null 2>&1 || need_apt+=(clang-19)
command -v lld-19 >/dev/null 2>&1 || need_apt+=(lld-19)
if [ ${#need_apt[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# npm's package also ships a `bazel` shim that would collide with Debian's /usr/bin/bazel,
# so it gets a prefix of its own; tools/bazel.sh knows where to look.
BAZELISK_PREFIX=/opt/tf-qdq-bazelisk
if [ ! -x "$BAZELISK_PREFIX/bin/bazelisk" ]; then
  $SUDO npm install -g --silent --prefix "$BAZELISK_PREFIX" @bazel/bazelisk@1.28
fi
echo "system deps: $(clang-19 --version | head -1); bazelisk at $BAZELISK_PREFIX/bin/bazelisk"
