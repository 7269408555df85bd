#!/usr/bin/env bash
echo "tf-qdq: bazel coverage is not available offline (third_party/bazel_stubs/remote_coverage_tools)" >&2
exit 1
