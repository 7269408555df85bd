#!/usr/bin/env bash
# The C++ tests and tf_qdq._core under AddressSanitizer + UndefinedBehaviorSanitizer,
# and the libFuzzer target for a bounded time. Any sanitizer report, test failure or
# fuzzer finding exits non-zero. Needs `make build` (or an installed tf_qdq) first:
# the core module's Python tests compare with the TF ops.
#   tools/sanitizer_tests.sh test [BAZEL_ARGS...]   (make cc-test)
#   tools/sanitizer_tests.sh fuzz SECONDS           (make cc-fuzz)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BAZEL="${BAZEL:-tools/bazel.sh}"
PY="${PYTHON_BIN_PATH:-$ROOT/.venv/bin/python}"
mode="${1:?usage: sanitizer_tests.sh test|fuzz ...}"
shift

case "$mode" in
test)
  # 1. cc_tests, plain and sanitized (separate output trees: k8-opt, k8-opt-asan).
  "$BAZEL" test "$@" //cc/tests:all
  "$BAZEL" test --config=asan "$@" //cc/tests:all
  #    The CPU loops again with the AVX-512 paths switched off: a machine with
  #    AVX-512 runs the AVX ones only here (cpu_loops_test checks bits, not ISA).
  "$BAZEL" test --test_env=TF_QDQ_NO_AVX512=1 "$@" //cc/tests:cpu_loops_test
  # 2. tf_qdq._core built with -fsanitize=address,undefined, in a copy of the
  #    tf_qdq package (the installed wheel's, else the source tree's staged one),
  #    under tests/core/test_core_cpu.py. Python itself is not instrumented, so
  #    libasan is preloaded; leak checking is off (CPython and TF keep their
  #    allocations until exit, which LeakSanitizer would report).
  "$BAZEL" build --config=asan "$@" //cc/python:core_module
  ext="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
  core="$ROOT/bazel-out/k8-opt-asan/bin/cc/python/_core$ext"
  [ -f "$core" ] || { echo "sanitizer_tests: $core not built" >&2; exit 1; }
  pkg="$(cd / && "$PY" -c 'import importlib.util as u; s = u.find_spec("tf_qdq"); print(s.submodule_search_locations[0] if s else "")')"
  [ -n "$pkg" ] && [ -f "$pkg/_tf_qdq_ops.so" ] ||
    { echo "sanitizer_tests: no built tf_qdq package (run make build or make install)" >&2; exit 1; }
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' EXIT
  cp -r "$pkg" "$stage/tf_qdq"
  rm -f "$stage"/tf_qdq/_core*.so
  install -m 0755 "$core" "$stage/tf_qdq/_core$ext"
  # libstdc++ is preloaded too, else ASan's __cxa_throw interceptor finds no real
  # __cxa_throw (python3 does not link libstdc++) and aborts at the first C++ throw.
  libasan="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so.6)"
  echo "sanitizer_tests: tests/core/test_core_cpu.py with $core (LD_PRELOAD=$libasan)"
  (cd tests && \
    PYTHONPATH="$stage" LD_PRELOAD="$libasan" \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_odr_violation=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$PY" -m pytest -q -p no:cacheprovider -p no:randomly core/test_core_cpu.py)
  # The module really was the sanitized one (resolved as pytest resolved it, from tests/):
  (cd tests && PYTHONPATH="$stage" LD_PRELOAD="$libasan" ASAN_OPTIONS=detect_leaks=0 "$PY" -c '
import sys
from tf_qdq import _core
assert "/tf_qdq/_core" in _core.__file__ and _core.__file__.startswith(sys.argv[1]), _core.__file__
print("sanitizer_tests: tf_qdq._core from", _core.__file__)' "$stage")
  ;;
fuzz)
  seconds="${1:-60}"
  shift || true
  "$BAZEL" build "$@" //cc/tests:core_fuzzer
  corpus="$ROOT/build/fuzz_corpus/core_fuzzer"
  mkdir -p "$corpus" "$ROOT/build/fuzz_artifacts"
  # -timeout: one input may take at most 20 s; -rss_limit_mb: the inputs are capped
  # at 50,000 elements, so more than 2 GB is a finding too.
  "$ROOT/bazel-bin/cc/tests/core_fuzzer" -max_total_time="$seconds" -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$ROOT/build/fuzz_artifacts/" "$corpus"
  ;;
*)
  echo "usage: sanitizer_tests.sh test|fuzz ..." >&2
  exit 2
  ;;
esac
