"""Repository rule that makes the installed TensorFlow wheel visible to Bazel as @local_config_tf.

Usage in WORKSPACE:

    load("//third_party/tf:tf_configure.bzl", "tf_configure")
    tf_configure(name = "local_config_tf")

It finds TensorFlow through these variables, which ./configure.sh writes into
.tf_configure.bazelrc as --repo_env lines:

    TF_HEADER_DIR            tf.sysconfig.get_include()
    TF_SHARED_LIBRARY_DIR    tf.sysconfig.get_lib()
    TF_SHARED_LIBRARY_NAME   libtensorflow_framework.so.2 (from get_link_flags())
    TF_CXX_DEFINES           comma-separated -D values from get_compile_flags()
    TF_VERSION               tf.__version__ (informational; a change re-runs the rule)

When TF_HEADER_DIR is unset it asks PYTHON_BIN_PATH's (default: python3) tf.sysconfig
instead. It only creates symlinks (never copies, never downloads), so it works offline
and costs well under a second when the variables are set.

@local_config_tf exposes :tf_header_lib, :libtensorflow_framework and :cuda_headers.
"""

_ENV_VARS = [
    "TF_HEADER_DIR",
    "TF_SHARED_LIBRARY_DIR",
    "TF_SHARED_LIBRARY_NAME",
    "TF_CXX_DEFINES",
    "TF_VERSION",
    "PYTHON_BIN_PATH",
]

_DEFAULT_LIBRARY_NAME = "libtensorflow_framework.so.2"
_DEFAULT_DEFINES = ["_GLIBCXX_USE_CXX11_ABI=1", "EIGEN_MAX_ALIGN_BYTES=64"]

# Prints one "key=value" line per fact; keeps going only as far as TF allows.
_QUERY_SCRIPT = """
import tensorflow as tf
sc = tf.sysconfig
lib_name = "libtensorflow_framework.so.2"
for flag in sc.get_link_flags():
    if flag.startswith("-l:"):
        lib_name = flag[3:]
defines = [f[2:] for f in sc.get_compile_flags() if f.startswith("-D")]
print("TF_HEADER_DIR=" + sc.get_include())
print("TF_SHARED_LIBRARY_DIR=" + sc.get_lib())
print("TF_SHARED_LIBRARY_NAME=" + lib_name)
print("TF_CXX_DEFINES=" + ",".join(defines))
print("TF_VERSION=" + tf.__version__)
"""

def _fail(msg):
    fail("\n\033[0;31mtf_configure (@local_config_tf):\033[0m %s\n" % msg +
         "Run ./configure.sh first (it writes .tf_configure.bazelrc), e.g.\n" +
         "    PYTHON_BIN_PATH=/path/to/python ./configure.sh\n")

def _query_python(repository_ctx):
    python = repository_ctx.os.environ.get("PYTHON_BIN_PATH", "").strip()
    if not python:
        python = repository_ctx.which("python3")
        if python == None:
            _fail("TF_HEADER_DIR is not set and there is no python3 on PATH.")
    result = repository_ctx.execute(
        [str(python), "-c", _QUERY_SCRIPT],
        environment = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
        timeout = 300,
    )
    if result.return_code != 0:
        _fail("could not import tensorflow with %s:\n%s" % (python, result.stderr))
    facts = {}
    for line in result.stdout.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            facts[key.strip()] = value.strip()
    return facts

def _tf_configure_impl(repository_ctx):
    env = repository_ctx.os.environ
    if env.get("TF_HEADER_DIR", "").strip():
        facts = {key: env.get(key, "").strip() for key in _ENV_VARS}
    else:
        facts = _query_python(repository_ctx)

    header_dir = facts.get("TF_HEADER_DIR", "")
    lib_dir = facts.get("TF_SHARED_LIBRARY_DIR", "")
    lib_name = facts.get("TF_SHARED_LIBRARY_NAME", "") or _DEFAULT_LIBRARY_NAME
    version = facts.get("TF_VERSION", "") or "unknown"
    defines_csv = facts.get("TF_CXX_DEFINES", "")
    defines = [d for d in defines_csv.split(",") if d] if defines_csv else _DEFAULT_DEFINES

    if not lib_dir:
        _fail("TF_SHARED_LIBRARY_DIR is not set.")
    header_path = repository_ctx.path(header_dir)
    if not header_path.exists or not header_path.get_child("tensorflow").get_child("core").exists:
        _fail("TF_HEADER_DIR=%s is not TensorFlow's include directory." % header_dir)
    lib_path = repository_ctx.path(lib_dir).get_child(lib_name)
    if not lib_path.exists:
        _fail("%s does not exist (TF_SHARED_LIBRARY_DIR/TF_SHARED_LIBRARY_NAME)." % lib_path)

    # Symlinks, not copies (see BUILD.tpl).
    repository_ctx.symlink(header_path, "include")
    repository_ctx.symlink(lib_path, lib_name)

    repository_ctx.template("BUILD", repository_ctx.attr._build_tpl, {
        "%{TF_VERSION}": version,
        "%{TF_HEADER_DIR}": header_dir,
        "%{TF_SHARED_LIBRARY_NAME}": lib_name,
        "%{TF_SHARED_LIBRARY_PATH}": str(lib_path),
        "%{TF_DEFINES}": ", ".join(['"%s"' % d for d in defines]),
    }, executable = False)

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    attrs = {
        "_build_tpl": attr.label(default = Label("//third_party/tf:BUILD.tpl"), allow_single_file = True),
    },
    environ = _ENV_VARS,
    # Not `local`: the rule re-runs only when one of the variables above changes
    # (./configure.sh found another TensorFlow), not on every server start.
    local = False,
)
