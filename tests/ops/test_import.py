"""Importing tf_qdq: op and kernel registration, the loader's version and
missing-library errors, and a SavedModel round trip.

Subprocesses run sys.executable in this same environment. Those that must see
a doctored copy of the package run with that copy's parent directory as their
working directory (`python -c` puts the working directory first on sys.path);
the others inherit this process's working directory, so they import the same
tf_qdq as the tests do (checked).
"""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import kernels
from tensorflow.python.framework import op_def_registry
from tensorflow.python.framework import ops as tf_ops

import tf_qdq

from _cases import OP_NAMES

OPS = ["TfQdq>" + n for n in OP_NAMES]
SUBPROCESS_TIMEOUT_S = 180


def run_python(code, *args, cwd=None):
  """Runs `code` in a fresh interpreter of this environment."""
  proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                        cwd=cwd or os.getcwd(), capture_output=True, text=True,
                        timeout=SUBPROCESS_TIMEOUT_S)
  return proc


def _explain(proc):
  return f"rc {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"


# ---- (a) registration ----------------------------------------------------------------


def test_import_exposes_the_api():
  for name in tf_qdq.__all__:
    if name != "raw_ops":
      assert callable(getattr(tf_qdq, name)), name
  assert "raw_ops" in tf_qdq.__all__
  for fn in ["quantize_and_dequantize", "quantize_and_dequantize_v2",
             "quantize_and_dequantize_v4", "quantize_and_dequantize_v4_grad",
             "fake_quant_with_min_max_args", "fake_quant_with_min_max_args_gradient",
             "fake_quant_with_min_max_vars", "fake_quant_with_min_max_vars_gradient",
             "fake_quant_with_min_max_vars_per_channel",
             "fake_quant_with_min_max_vars_per_channel_gradient"]:
    assert fn in tf_qdq.__all__
  for name in ["quantize_and_dequantize_v4", "quantize_and_dequantize_v4_grad",
               "fake_quant_with_min_max_args",
               "fake_quant_with_min_max_args_gradient",
               "fake_quant_with_min_max_vars",
               "fake_quant_with_min_max_vars_gradient",
               "fake_quant_with_min_max_vars_per_channel",
               "fake_quant_with_min_max_vars_per_channel_gradient"]:
    assert callable(getattr(tf_qdq.raw_ops, "tf_qdq_" + name)), name


@pytest.mark.parametrize("op", OPS)
def test_op_is_registered(op):
  op_def = op_def_registry.get(op)
  assert op_def is not None, op
  t_attr = [a for a in op_def.attr if a.name == "T"]
  assert len(t_attr) == 1
  allowed = {tf.dtypes.as_dtype(t).name for t in t_attr[0].allowed_values.list.type}
  assert allowed == {"bfloat16", "float16", "float32", "float64"}


@pytest.mark.parametrize("op", OPS)
def test_cpu_kernels_for_all_dtypes(op):
  registered = set()
  for k in kernels.get_registered_kernels_for_op(op).kernel:
    constraints = {c.name: c.allowed_values.list.type for c in k.constraint}
    for t in constraints.get("T", []):
      registered.add((k.device_type, tf.dtypes.as_dtype(t).as_datatype_enum))
  want = {("CPU", getattr(tf.dtypes, name).as_datatype_enum)
          for name in ("bfloat16", "float16", "float32", "float64")}
  assert want <= registered, (op, registered)


@pytest.mark.parametrize("op", OPS)
def test_gradient_is_registered(op):
  assert tf_ops.gradient_registry.lookup(op) is not None


def test_fake_quant_t_defaults_to_float():
  for op in OPS[2:]:
    t = [a for a in op_def_registry.get(op).attr if a.name == "T"][0]
    assert t.default_value.type == tf.float32.as_datatype_enum, op


def test_build_info_matches_installed_tensorflow():
  from tf_qdq import _build_info  # pylint: disable=g-import-not-at-top
  assert _build_info.TF_VERSION.split(".")[:2] == tf.__version__.split(".")[:2]


def test_every_op_runs_for_every_dtype():
  for dtype in (tf.bfloat16, tf.float16, tf.float32, tf.float64):
    x = tf.constant([[-1.5, 0.25], [0.5, 2.0]], dtype)
    mn, mx = tf.constant(-1., dtype), tf.constant(1., dtype)
    mnv, mxv = tf.fill([2], mn), tf.fill([2], mx)
    outs = [
        tf_qdq.quantize_and_dequantize_v4(x, mn, mx, range_given=True),
        tf_qdq.quantize_and_dequantize_v4_grad(x, x, mn, mx)[0],
        tf_qdq.fake_quant_with_min_max_args(x),
        tf_qdq.fake_quant_with_min_max_args_gradient(x, x),
        tf_qdq.fake_quant_with_min_max_vars(x, mn, mx),
        tf_qdq.fake_quant_with_min_max_vars_gradient(x, x, mn, mx)[0],
        tf_qdq.fake_quant_with_min_max_vars_per_channel(x, mnv, mxv),
        tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(x, x, mnv, mxv)[0],
    ]
    for o in outs:
      assert o.dtype == dtype and o.shape == [2, 2]


# ---- (b), (c) loader errors -------------------------------------------------------------


@pytest.fixture
def package_copy(tmp_path):
  """A copy of the imported tf_qdq package under tmp_path/tf_qdq."""
  src = os.path.dirname(os.path.abspath(tf_qdq.__file__))
  dst = tmp_path / "tf_qdq"
  shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
  assert (dst / "_tf_qdq_ops.so").exists()
  return dst


_TRY_IMPORT = """
    import tensorflow as tf
    try:
        import tf_qdq
    except ImportError as e:
        print("IMPORT_ERROR:", e)
    else:
        print("IMPORTED", tf_qdq.__file__)
    """


def test_version_mismatch_is_an_explained_import_error(package_copy):
  (package_copy / "_build_info.py").write_text(
      '# doctored by test_import.py\nTF_VERSION = "2.99.0"\n')
  proc = run_python(_TRY_IMPORT, cwd=str(package_copy.parent))
  assert proc.returncode == 0, _explain(proc)
  assert "IMPORT_ERROR:" in proc.stdout, _explain(proc)
  msg = proc.stdout.split("IMPORT_ERROR:", 1)[1]
  assert "2.99.0" in msg and tf.__version__ in msg
  # ... and says what to do about it
  assert "tensorflow==2.99.0" in msg
  assert "rebuild" in msg.lower()


def test_missing_library_is_an_explained_import_error(package_copy):
  (package_copy / "_tf_qdq_ops.so").unlink()
  proc = run_python(_TRY_IMPORT, cwd=str(package_copy.parent))
  assert proc.returncode == 0, _explain(proc)
  assert "IMPORT_ERROR:" in proc.stdout, _explain(proc)
  msg = proc.stdout.split("IMPORT_ERROR:", 1)[1]
  assert "_tf_qdq_ops.so" in msg
  assert os.path.join(package_copy.parent.name, "tf_qdq", "_tf_qdq_ops.so") in msg
  assert "missing" in msg


# ---- (d) SavedModel round trip -------------------------------------------------------------


class _Model(tf.Module):

  def __init__(self):
    super().__init__()
    self.mn = tf.Variable(-1.0)
    self.mx = tf.Variable(1.0)
    self.ch_min = tf.Variable([-1.0, -0.5, -2.0, -0.25])
    self.ch_max = tf.Variable([1.0, 0.75, 2.0, 0.25])

  @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
  def __call__(self, x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      vars_out = tf_qdq.fake_quant_with_min_max_vars(x, self.mn, self.mx)
      loss = tf.reduce_sum(vars_out * vars_out)
    return {
        "vars": vars_out,
        "vars_dx": tape.gradient(loss, x),
        "per_channel": tf_qdq.fake_quant_with_min_max_vars_per_channel(
            x, self.ch_min, self.ch_max, num_bits=4),
        "qdq": tf_qdq.quantize_and_dequantize_v2(
            x, self.ch_min, self.ch_max, range_given=True, axis=-1),
        "qdq_half": tf.cast(tf_qdq.quantize_and_dequantize_v4(
            tf.cast(x, tf.float16), tf.constant(0., tf.float16),
            tf.constant(0., tf.float16), round_mode="HALF_UP"), tf.float32),
        "args": tf_qdq.fake_quant_with_min_max_args(x, min=-2., max=2.),
    }


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
  root = tmp_path_factory.mktemp("saved_model")
  model = _Model()
  path = str(root / "model")
  tf.saved_model.save(model, path)
  x = np.random.default_rng(0).uniform(-2.5, 2.5, size=[5, 4]).astype(np.float32)
  expected = {k: v.numpy() for k, v in model(tf.constant(x)).items()}
  data = str(root / "expected.npz")
  np.savez(data, x=x, **expected)
  return path, data


def test_saved_model_round_trip_with_tf_qdq(saved_model):
  path, data = saved_model
  proc = run_python("""
      import sys
      import numpy as np
      import tensorflow as tf
      import tf_qdq
      m = tf.saved_model.load(sys.argv[1])
      data = np.load(sys.argv[2])
      out = m(tf.constant(data["x"]))
      assert sorted(out) == sorted(k for k in data.files if k != "x"), sorted(out)
      for k, v in out.items():
          v = v.numpy()
          assert v.dtype == data[k].dtype and v.shape == data[k].shape, k
          assert v.tobytes() == data[k].tobytes(), (k, v, data[k])
      print("ROUNDTRIP_OK", tf_qdq.__file__)
      """, path, data)
  assert proc.returncode == 0, _explain(proc)
  assert "ROUNDTRIP_OK" in proc.stdout, _explain(proc)
  child_file = proc.stdout.split("ROUNDTRIP_OK", 1)[1].strip()
  assert os.path.realpath(child_file) == os.path.realpath(tf_qdq.__file__)


def test_saved_model_without_tf_qdq_names_the_missing_op(saved_model):
  path, _ = saved_model
  proc = run_python("""
      import sys
      import tensorflow as tf
      try:
          tf.saved_model.load(sys.argv[1])
      except Exception as e:
          print("LOAD_ERROR", type(e).__name__, e)
      else:
          print("LOADED")
      assert "tf_qdq" not in sys.modules
      """, path)
  assert proc.returncode == 0, _explain(proc)
  assert "LOAD_ERROR" in proc.stdout, _explain(proc)
  assert "Op type not registered 'TfQdq>" in proc.stdout, _explain(proc)
