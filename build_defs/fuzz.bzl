"""libFuzzer binaries for tf-qdq: clang-19 with -fsanitize=fuzzer,address,undefined.

    load("//build_defs:fuzz.bzl", "tf_qdq_cc_fuzzer")
    tf_qdq_cc_fuzzer(
        name = "core_fuzzer",
        srcs = ["core_fuzzer.cc"],   # defines LLVMFuzzerTestOneInput
        deps = ["//cc/core"],        # header-only cc_library targets
    )

The regular C++ toolchain is GCC (Bazel's auto-configured one), and libFuzzer needs
clang; switching the whole build's toolchain (--repo_env=CC=clang) would recompile
everything each time. So this rule runs clang-19 itself, like //build_defs:cuda.bzl
does for CUDA: one compile-and-link action, with the headers and defines of `deps`
and the flags that decide the bits (//build_defs:copts.bzl). It needs clang-19 and
libclang-rt-19-dev (tools/install_system_deps.sh). Run the binary with libFuzzer's
flags, e.g. `bazel-bin/cc/tests/core_fuzzer -max_total_time=60 CORPUS_DIR`.
"""

load("//build_defs:copts.bzl", "TF_QDQ_COPTS", "add_compilation_args")

_SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
clang="$(command -v clang++-19 || echo /usr/lib/llvm-19/bin/clang++)"
command -v "$clang" >/dev/null 2>&1 || {
  echo "tf_qdq_cc_fuzzer: no clang++-19 (tools/install_system_deps.sh installs it)" >&2; exit 1; }
rt="$("$clang" -print-file-name=libclang_rt.fuzzer-x86_64.a)"
[ -f "$rt" ] || {
  echo "tf_qdq_cc_fuzzer: clang-19 has no libFuzzer runtime: apt-get install libclang-rt-19-dev" \\
       "(tools/install_system_deps.sh)" >&2; exit 1; }
exec "$clang" "$@"
"""

def _fuzzer_impl(ctx):
    compilation = cc_common.merge_cc_infos(
        cc_infos = [dep[CcInfo] for dep in ctx.attr.deps],
    ).compilation_context
    script = ctx.actions.declare_file(ctx.label.name + "_clang.sh")
    ctx.actions.write(script, _SCRIPT, is_executable = True)
    out = ctx.actions.declare_file(ctx.label.name)
    srcs = [f for f in ctx.files.srcs if f.extension in ["cc", "cpp"]]
    args = ctx.actions.args()
    args.add_all(["-std=c++17", "-O2", "-g", "-fno-omit-frame-pointer"])
    args.add_all(["-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"])
    args.add_all(TF_QDQ_COPTS)
    add_compilation_args(args, ctx, compilation)
    args.add_all(ctx.attr.copts)
    args.add_all(srcs)
    args.add_all(["-o", out])
    ctx.actions.run(
        executable = script,
        arguments = [args],
        inputs = depset(direct = ctx.files.srcs, transitive = [compilation.headers]),
        outputs = [out],
        mnemonic = "FuzzerCompile",
        progress_message = "Compiling libFuzzer target %s (clang-19)" % ctx.label,
        use_default_shell_env = True,  # PATH, for clang++-19
    )
    return [DefaultInfo(executable = out, files = depset([out]))]

tf_qdq_cc_fuzzer = rule(
    implementation = _fuzzer_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = True),
        "deps": attr.label_list(providers = [CcInfo]),
        "copts": attr.string_list(),
    },
    executable = True,
    doc = "A libFuzzer binary (clang-19, ASan + UBSan) from header-only cc deps.",
)
