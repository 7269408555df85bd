"""The compiler flags that decide tf-qdq's bits: the one list.

Every host compile of cc/core's arithmetic takes TF_QDQ_COPTS: the op library
(//cc/tf:_tf_qdq_ops.so), the pybind11 module (//cc/python:core_module), the C++
tests and the fuzzer (//cc/tests). The clang CUDA compiles (cuda.bzl) take
FP_COPTS. cc/python/CMakeLists.txt (the nvcc build for GPU machines) parses the
two lists below out of this file, so keep each list's strings on their own
lines, quoted, with no comments inside the brackets.
"""

# The arithmetic, on every compiler and device:
#  -ffp-contract=off  never contract a*b+c into an FMA: TF's CPU kernels round
#                     every step separately (GCC's default in GNU mode is
#                     -ffp-contract=fast, clang's CUDA default contracts too).
#                     nvcc spells it --fmad=false (CMakeLists.txt maps it).
#  -fno-trapping-math lets GCC inline and vectorise floor()/rint() (vroundps);
#                     it only stops treating FP exception flags as observable
#                     and changes no IEEE result (unlike -ffast-math). Clang's
#                     default already.
FP_COPTS = [
    "-ffp-contract=off",
    "-fno-trapping-math",
]

# The host ISA: AVX is TensorFlow 2.21's own baseline (its wheel needs it), so
# it costs no portability; it gives vector rint/floor, without which the QDQ
# and FakeQuant loops cannot vectorise. F16C and AVX2 are used only behind run
# time checks. No -march=native: the .so must run on any x86-64 that runs the
# TF wheel, and the bits must not depend on the build machine.
HOST_ISA_COPTS = [
    "-mavx",
]

TF_QDQ_COPTS = FP_COPTS + HOST_ISA_COPTS

def add_compilation_args(args, ctx, compilation):
    """Adds a CcInfo compilation context's include paths and defines to `args`, as
    Bazel's own C++ compiles pass them (the workspace root and bin dir for "cc/..."
    includes first). For the rules that run a compiler themselves: cuda.bzl (clang
    in CUDA mode) and fuzz.bzl (clang with libFuzzer)."""
    args.add_all(["-iquote", ".", "-iquote", ctx.bin_dir.path])
    args.add_all(compilation.quote_includes, before_each = "-iquote")
    args.add_all(compilation.includes, before_each = "-I")
    args.add_all(compilation.system_includes, before_each = "-isystem")
    args.add_all(compilation.defines, format_each = "-D%s")
