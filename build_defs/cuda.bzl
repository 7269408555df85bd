"""CUDA kernels for tf-qdq: clang-19 in CUDA mode, never nvcc 13. See docs/toolchain.md.

Public API:

    load("//build_defs:cuda.bzl", "if_cuda", "tf_qdq_cuda_library")

    tf_qdq_cuda_library(
        name = "gpu_kernels",
        srcs = ["gpu_functors.cu.cc"],   # compiled with clang -x cuda
        hdrs = [...],                            # headers the .cu.cc files share with .cc files
        deps = ["//cc/core", "@local_config_tf//:tf_header_lib"],
        copts = [],                              # extra clang flags for the .cu.cc files
    )

With --config=cuda (--define=using_cuda=true) it is a cc_library holding the compiled
objects (cubins for sm_70/sm_80/sm_90 + compute_90 PTX, host code PIC) and it gives every
target that depends on it GOOGLE_CUDA=1 and TF_QDQ_WITH_CUDA=1 as defines and TF's CUDA
headers (cuda_runtime.h, CCCL) on the include path. Without it, it is an empty
cc_library and nothing is compiled, so one op library target can depend on it
unconditionally and holds CPU+GPU kernels or CPU kernels only depending on the config.

`if_cuda(a, b = [])` selects on the same config setting (//build_defs:using_cuda).

The toolkit (clang's --cuda-path, made by tools/install_cuda_toolchain.sh) is found through
@local_config_cuda_toolkit, which cuda_toolkit_configure (below, registered in WORKSPACE)
creates. That repository only records the path: it never fails, installed toolkit or not,
so plain CPU builds neither need nor look at the toolkit.
"""

load("//build_defs:copts.bzl", "FP_COPTS", "add_compilation_args")

# GPU architectures: cubins for each; PTX only for the last (newest), for JIT on newer GPUs.
# TF 2.21's own kernels ship sm_60/70/80/89/90 cubins + compute_90 PTX. Each arch costs
# ~7-12 s per .cu.cc on 2 cores (docs/toolchain.md). For quicker local iterations:
# --define=tf_qdq_cuda_archs=sm_80 (cubin + PTX for that arch only).
TF_QDQ_CUDA_ARCHS = ["sm_70", "sm_80", "sm_90"]

_USING_CUDA = str(Label("//build_defs:using_cuda"))
_TF_HEADERS = "@local_config_tf//:tf_header_lib"
_TF_CUDA_HEADERS = "@local_config_tf//:cuda_headers"
_TOOLKIT = "@local_config_cuda_toolkit//:toolkit"

# Flags of every .cu.cc compile (plus -x cuda, --cuda-path and the arch flags).
_CUDA_COPTS = [
    "-std=c++17",
    "-O3",  # also what clang passes on to ptxas (-O0 without it)
    "-g0",
    "-fPIC",
    # Our template instantiations (CUB's included) must not interpose with the copies
    # libtensorflow_framework.so.2 exports: under clang, CUB's versioned namespace is the
    # same one TF's own libraries use.
    "-fvisibility=hidden",
    # Bit-exactness: FP_COPTS (//build_defs:copts.bzl), the arithmetic flags of every
    # host compile too, are appended to this list. clang contracts a*b+c into FMA by default
    # in CUDA mode (-ffp-contract=fast for device code), which changes the rounding;
    # the GPU kernels must give the same bits as the CPU kernels. Never drop them.
    # TF's CPU kernels run with denormals flushed (FTZ/DAZ), and so do ours;
    # flush float denormals on the device too. (Double has no device FTZ; the
    # gradient formulas flush explicitly, see cc/core/numeric.h.)
    "-fcuda-flush-denormals-to-zero",
    "-DGOOGLE_CUDA=1",
    "-DTF_QDQ_WITH_CUDA=1",
    # clang 19: "CUDA version 12.5 is only partially supported". It works (TF's own
    # CUDA build is clang + 12.5).
    "-Wno-unknown-cuda-version",
    "-Wno-deprecated-declarations",
    "-Wno-nullability-completeness",
] + FP_COPTS

_OPT_COPTS = ["-DNDEBUG", "-ffunction-sections", "-fdata-sections"]

_CUDA_SRC_EXTENSIONS = [".cu.cc", ".cu", ".cc", ".cpp"]

def if_cuda(if_true, if_false = []):
    """select(): `if_true` with --config=cuda (--define=using_cuda=true), else `if_false`."""
    return select({
        _USING_CUDA: if_true,
        "//conditions:default": if_false,
    })

# --- the toolkit location ----------------------------------------------------------------

CudaToolkitInfo = provider(
    doc = "Where clang's --cuda-path directory is (absolute) and which clang to run.",
    fields = {
        "path": "absolute path of the --cuda-path directory",
        "clang": "clang binary; empty: clang-19 from PATH at execution time",
    },
)

def _cuda_toolkit_info_impl(ctx):
    return [CudaToolkitInfo(path = ctx.attr.path, clang = ctx.attr.clang)]

cuda_toolkit_info = rule(
    implementation = _cuda_toolkit_info_impl,
    attrs = {
        "path": attr.string(mandatory = True),
        "clang": attr.string(default = ""),
    },
    doc = "Used by the BUILD file that cuda_toolkit_configure generates.",
)

def _cuda_toolkit_configure_impl(repository_ctx):
    root = str(repository_ctx.path(Label("//:WORKSPACE")).dirname)
    env = repository_ctx.os.environ
    path = env.get("TF_QDQ_CUDA_PATH", "").strip()
    if not path:
        path = root + "/build/cuda_toolkit"
    elif not path.startswith("/"):
        path = root + "/" + path
    clang = env.get("TF_QDQ_CUDA_CLANG", "").strip()
    repository_ctx.file("BUILD", "\n".join([
        "# Generated by //build_defs:cuda.bzl (cuda_toolkit_configure): do not edit.",
        "# clang's --cuda-path for tf-qdq's CUDA kernels. The directory need not exist:",
        "# only --config=cuda compiles use it, and they check it.",
        'load("@//build_defs:cuda.bzl", "cuda_toolkit_info")',
        "",
        'package(default_visibility = ["//visibility:public"])',
        "",
        "cuda_toolkit_info(",
        '    name = "toolkit",',
        "    path = %r," % path,
        "    clang = %r," % clang,
        ")",
        "",
    ]), executable = False)

cuda_toolkit_configure = repository_rule(
    implementation = _cuda_toolkit_configure_impl,
    # TF_QDQ_CUDA_PATH: the toolkit directory (default <workspace>/build/cuda_toolkit,
    # where tools/install_cuda_toolchain.sh puts it; relative paths are relative to the
    # workspace). TF_QDQ_CUDA_CLANG: the clang binary (default clang-19 from PATH).
    # Pass them with --repo_env, e.g. in user.bazelrc.
    environ = ["TF_QDQ_CUDA_PATH", "TF_QDQ_CUDA_CLANG"],
    local = False,
    doc = "Creates @local_config_cuda_toolkit//:toolkit (a CudaToolkitInfo). Never fails.",
)

# --- compiling .cu.cc files --------------------------------------------------------------

# The compile action's script (written next to the objects; no BUILD file needed for it):
#   clang_cuda.sh TOOLKIT CLANG -- CLANG_ARGS...
# Checks that TOOLKIT (clang's --cuda-path) is complete and uses the CUDA headers of the
# TF that @local_config_tf points at, with an actionable error otherwise, then runs clang.
# CLANG empty: clang-19 from PATH.
_COMPILE_SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
toolkit="$1"; clang="$2"; shift 3
fail() {
  echo "tf-qdq CUDA build: $*" >&2
  echo "  Install the toolchain: tools/install_cuda_toolchain.sh (docs/toolchain.md)." >&2
  exit 1
}
for f in bin/ptxas bin/fatbinary nvvm/libdevice/libdevice.10.bc include/cuda.h; do
  [ -e "$toolkit/$f" ] || fail "$toolkit/$f is missing (clang --cuda-path)."
done
# (cuda.h is a declared input: this works with and without the sandbox.)
tf_cuda_h=external/local_config_tf/include/third_party/gpus/cuda/include/cuda.h
if [ -e "$tf_cuda_h" ] &&
   [ "$(readlink -f "$toolkit/include/cuda.h")" != "$(readlink -f "$tf_cuda_h")" ]; then
  fail "$toolkit/include is not the CUDA headers of the configured TensorFlow" \\
       "($(dirname "$(readlink -f "$tf_cuda_h")")). Re-run the installer."
fi
if [ -z "$clang" ]; then
  clang="$(command -v clang-19 || echo /usr/lib/llvm-19/bin/clang)"
fi
command -v "$clang" >/dev/null 2>&1 ||
  fail "no $clang (tools/install_system_deps.sh installs clang-19; or --repo_env=TF_QDQ_CUDA_CLANG=...)."
exec "$clang" --cuda-path="$toolkit" "$@"
"""

def _object_stem(src):
    path = src.short_path
    if src.owner and src.owner.package and path.startswith(src.owner.package + "/"):
        path = path[len(src.owner.package) + 1:]
    for ext in [".cc", ".cpp", ".cu"]:
        if path.endswith(ext):
            return path[:-len(ext)]
    return path

def _cuda_objects_impl(ctx):
    toolkit = ctx.attr.toolkit[CudaToolkitInfo]
    compilation = cc_common.merge_cc_infos(
        cc_infos = [dep[CcInfo] for dep in ctx.attr.deps],
    ).compilation_context

    archs = ctx.attr.cuda_archs
    override = ctx.var.get("tf_qdq_cuda_archs", "")
    if override:
        archs = [a.strip() for a in override.split(",") if a.strip()]
    if not archs:
        fail("no CUDA architectures")
    for arch in archs:
        if not arch.startswith("sm_"):
            fail("CUDA architectures are sm_XX, got %r" % arch)

    arch_flags = ["--cuda-gpu-arch=" + a for a in archs]

    # PTX only for the newest arch: cubins for all, compute_XX of the last one.
    arch_flags += ["--no-cuda-include-ptx=" + a for a in archs[:-1]]

    mode_flags = _OPT_COPTS if ctx.var.get("COMPILATION_MODE", "opt") == "opt" else []

    sources = []
    headers = list(ctx.files.hdrs)
    for f in ctx.files.srcs:
        if any([f.basename.endswith(ext) for ext in _CUDA_SRC_EXTENSIONS]):
            sources.append(f)
        else:
            headers.append(f)
    inputs = depset(direct = sources + headers, transitive = [compilation.headers])

    if not sources:  # CPU-only build: if_cuda() left no sources
        return [DefaultInfo(files = depset())]
    script = ctx.actions.declare_file("_objs/%s/clang_cuda.sh" % ctx.label.name)
    ctx.actions.write(script, _COMPILE_SCRIPT, is_executable = True)

    outputs = []
    seen = {}
    for src in sources:
        stem = _object_stem(src)
        if stem in seen:
            fail("two sources compile to the same object name: %s" % stem)
        seen[stem] = True
        # One .o, compiled with -fPIC: Bazel links a precompiled ".o" (anything but
        # ".nopic.o") into shared libraries and executables alike. A ".pic.o" beside it
        # would be linked twice (multiple definitions).
        obj = ctx.actions.declare_file("_objs/%s/%s.o" % (ctx.label.name, stem))

        args = ctx.actions.args()
        args.add_all([toolkit.path, toolkit.clang, "--"])
        args.add_all(["-x", "cuda"])
        args.add_all(arch_flags)
        args.add_all(_CUDA_COPTS)
        args.add_all(mode_flags)

        # Like Bazel's own C++ compiles. TF's headers, its CUDA 12.5 headers and CCCL
        # 2.8.5 (cub, thrust, libcudacxx) come from @local_config_tf, as -isystem.
        add_compilation_args(args, ctx, compilation)
        args.add_all(ctx.attr.copts)
        args.add_all(["-c", src, "-o", obj])

        ctx.actions.run(
            executable = script,
            arguments = [args],
            inputs = inputs,
            outputs = [obj],
            mnemonic = "CudaCompile",
            progress_message = "Compiling CUDA %s (clang, %s)" % (src.short_path, "/".join(archs)),
            # PATH, to find clang-19 when TF_QDQ_CUDA_CLANG is not set.
            use_default_shell_env = True,
        )
        outputs.append(obj)

    return [DefaultInfo(files = depset(outputs))]

_cuda_objects = rule(
    implementation = _cuda_objects_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = True),
        "hdrs": attr.label_list(allow_files = True),
        "deps": attr.label_list(providers = [CcInfo]),
        "copts": attr.string_list(),
        "cuda_archs": attr.string_list(default = TF_QDQ_CUDA_ARCHS),
        "toolkit": attr.label(default = _TOOLKIT, providers = [CudaToolkitInfo]),
    },
    doc = "Compiles .cu.cc files with clang in CUDA mode into (PIC) .o objects.",
)

def tf_qdq_cuda_library(
        name,
        srcs,
        hdrs = [],
        deps = [],
        copts = [],
        cuda_archs = None,
        visibility = None,
        **kwargs):
    """A cc_library of CUDA kernels, compiled with clang-19 only under --config=cuda.

    Args:
      name: the cc_library's name. Depend on it from the op library.
      srcs: the .cu.cc files (headers may be listed too: they become compile inputs).
      hdrs: headers of this library, visible to dependents.
      deps: cc_library targets whose headers/defines the .cu.cc files need.
        @local_config_tf//:tf_header_lib and :cuda_headers are always added to the
        CUDA compile.
      copts: extra clang flags for the .cu.cc files (not for dependents).
      cuda_archs: cubin architectures (default TF_QDQ_CUDA_ARCHS, PTX for the last).
      visibility: of the cc_library.
      **kwargs: passed to the cc_library (tags, testonly, ...).
    """
    objects = name + "_cuda_objects"
    _cuda_objects(
        name = objects,
        srcs = if_cuda(srcs),
        hdrs = hdrs,
        deps = deps + [d for d in [_TF_HEADERS, _TF_CUDA_HEADERS] if d not in deps],
        copts = copts,
        cuda_archs = cuda_archs or TF_QDQ_CUDA_ARCHS,
        visibility = ["//visibility:private"],
        tags = kwargs.get("tags", []),
        testonly = kwargs.get("testonly", False),
    )
    native.cc_library(
        name = name,
        srcs = if_cuda([":" + objects]),
        hdrs = hdrs,
        deps = deps + if_cuda([d for d in [_TF_CUDA_HEADERS] if d not in deps]),
        # Every dependent's .cc files see these in CUDA builds: they register the GPU
        # kernels under #if GOOGLE_CUDA.
        defines = if_cuda(["GOOGLE_CUDA=1", "TF_QDQ_WITH_CUDA=1"]),
        # The objects may hold kernel registrations or other static initialisers.
        alwayslink = True,
        # No lib<name>.so of the objects for dynamically linked tests.
        linkstatic = True,
        visibility = visibility,
        **kwargs
    )
