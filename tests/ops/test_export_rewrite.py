"""python -m tf_qdq.saved_model_rewrite: a SavedModel of raw tf_qdq ops
rewritten into TF built-ins, loaded in a process that never imports tf_qdq,
bit for bit. tf_qdq.export is its alias (the former name)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tf_qdq
from tf_qdq import saved_model_rewrite as rewrite

pytestmark = pytest.mark.slow  # trains, converts, starts processes

_LOADER = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    x = tf.cast(tf.constant(np.load(sys.argv[2])), sys.argv[4])
    out = loaded.signatures["serving_default"](x)
    np.savez(sys.argv[3], **{k: tf.cast(v, tf.float32).numpy()
                             for k, v in out.items()})
    assert not [m for m in sys.modules if m.startswith("tf_qdq")]
""")


class _RawOps(tf.Module):

  def __init__(self):
    super().__init__()
    self.min = tf.Variable([-1.0, -0.5, -2.0, -0.25])
    self.max = tf.Variable([1.0, 0.5, 2.0, 0.75])

  @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
  def serve(self, x):
    return {
        "qdq": tf_qdq.quantize_and_dequantize_v4(x, -1.0, 1.0, num_bits=6,
                                                 range_given=True),
        "qdq_computed": tf_qdq.quantize_and_dequantize_v4(
            x, tf.zeros([4]), tf.zeros([4]), axis=1, round_mode="HALF_UP"),
        "args": tf_qdq.fake_quant_with_min_max_args(x, -3.0, 2.0, num_bits=5),
        "vars": tf_qdq.fake_quant_with_min_max_vars(x, self.min[0],
                                                    self.max[2]),
        "per_channel": tf_qdq.fake_quant_with_min_max_vars_per_channel(
            x, self.min, self.max, narrow_range=True),
    }


def _run_without_tf_qdq(path, x, tmp_path, cast_to="float32"):
  """Runs the SavedModel's serving signature on x (cast to `cast_to`) in a
  process without tf_qdq; returns its outputs as float32 arrays."""
  np.save(tmp_path / "x.npy", x)
  done = subprocess.run(
      [sys.executable, "-c", _LOADER, str(path), str(tmp_path / "x.npy"),
       str(tmp_path / "out.npz"), cast_to], cwd=str(tmp_path),
      env=dict(os.environ, PYTHONPATH=""), capture_output=True, text=True,
      timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return dict(np.load(tmp_path / "out.npz"))


def test_rewritten_saved_model_is_bit_identical_without_tf_qdq(tmp_path):
  module = _RawOps()
  src, dst = tmp_path / "src", tmp_path / "dst"
  tf.saved_model.save(module, str(src))
  done = subprocess.run([sys.executable, "-m", "tf_qdq.saved_model_rewrite",
                         str(src), str(dst)], capture_output=True, text=True,
                        timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "5 tf_qdq ops rewritten" in done.stdout
  assert rewrite.tf_qdq_ops_in(src) == {
      "TfQdq>QuantizeAndDequantizeV4", "TfQdq>FakeQuantWithMinMaxArgs",
      "TfQdq>FakeQuantWithMinMaxVars",
      "TfQdq>FakeQuantWithMinMaxVarsPerChannel"}
  assert rewrite.tf_qdq_ops_in(dst) == set()
  x = (np.random.default_rng(0).normal(size=(64, 4)) * 2).astype(np.float32)
  want = {k: v.numpy() for k, v in module.serve(tf.constant(x)).items()}
  got = _run_without_tf_qdq(dst, x, tmp_path)
  assert sorted(got) == sorted(want)
  for key, value in want.items():
    np.testing.assert_array_equal(got[key].view(np.uint32),
                                  value.view(np.uint32), err_msg=key)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_sixteen_bit_nodes_run_tf_float32_kernels_between_casts(dtype,
                                                                 tmp_path):
  class Half(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([None, 3], dtype)])
    def serve(self, x):
      lo, hi = tf.constant([-1.0, -0.5, -2.0], dtype), tf.constant(
          [1.0, 0.5, 0.7], dtype)
      gradients = tf_qdq.fake_quant_with_min_max_vars_gradient(
          x, x, lo[0], hi[0])
      return {"vars": tf_qdq.fake_quant_with_min_max_vars(x, lo[1], hi[1]),
              "per_channel": tf_qdq.fake_quant_with_min_max_vars_per_channel(
                  x, lo, hi, num_bits=4),
              "qdq": tf_qdq.quantize_and_dequantize_v4(x, lo[2], hi[2],
                                                       range_given=True),
              "input_backprop": gradients[0]}

  module = Half()
  src, dst = tmp_path / "src", tmp_path / "dst"
  tf.saved_model.save(module, str(src))
  with pytest.warns(UserWarning):
    rewrite.rewrite_saved_model(src, dst)
  assert rewrite.tf_qdq_ops_in(dst) == set()
  x = (np.random.default_rng(1).normal(size=(50, 3)) * 2).astype(np.float32)
  x = tf.cast(x, dtype)
  want = {k: tf.cast(v, tf.float32).numpy()
          for k, v in module.serve(x).items()}
  got = _run_without_tf_qdq(dst, tf.cast(x, tf.float32).numpy(), tmp_path,
                            cast_to=dtype.name)
  for key, value in want.items():
    np.testing.assert_array_equal(got[key].view(np.uint32),
                                  value.view(np.uint32), err_msg=key)


def test_rewrite_refuses_what_tf_cannot_run_and_names_it(tmp_path):
  class Double(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float64)])
    def serve(self, x):
      return tf_qdq.fake_quant_with_min_max_args(x)

  src = tmp_path / "double"
  tf.saved_model.save(Double(), str(src))
  with pytest.raises(ValueError, match="DT_DOUBLE.*tf_qdq.keras.export"):
    rewrite.rewrite_saved_model(src, tmp_path / "out")
  assert not (tmp_path / "out").exists()


def test_rewrite_warns_where_tf_bits_can_differ(tmp_path):
  src = tmp_path / "src"
  tf.saved_model.save(_RawOps(), str(src))
  with pytest.warns(UserWarning, match="docs/semantics.md D12, D13"):
    counts = rewrite.rewrite_saved_model(src, tmp_path / "dst")
  assert counts["TfQdq>FakeQuantWithMinMaxVarsPerChannel"] == 1
  with pytest.raises(FileExistsError):
    rewrite.rewrite_saved_model(src, tmp_path / "dst")


def test_float_only_twins_rewrite_and_training_steps_are_refused(tmp_path):
  """tf_qdq.raw_ops also builds the eager path's float-only ops and the Keras
  training step's op: the first has TF's op as counterpart, the second is
  named with the fix."""
  class Twin(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def serve(self, x):
      return tf_qdq.raw_ops.tf_qdq_fake_quant_with_min_max_args_float(
          inputs=x, min=-2.0, max=1.0)

  src = tmp_path / "twin"
  tf.saved_model.save(Twin(), str(src))
  rewrite.rewrite_saved_model(src, tmp_path / "twin_out")
  x = np.linspace(-3, 2, 41, dtype=np.float32)
  got = list(_run_without_tf_qdq(tmp_path / "twin_out", x, tmp_path).values())[0]
  want = tf.quantization.fake_quant_with_min_max_args(x, -2.0, 1.0).numpy()
  np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))

  class Step(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def serve(self, x):
      return tf_qdq.raw_ops.tf_qdq_fake_quant_with_moving_average(
          inputs=x, min=-1.0, max=1.0, initialized=0.0)[0]

  src = tmp_path / "step"
  tf.saved_model.save(Step(), str(src))
  with pytest.raises(ValueError, match="training step.*training=False"):
    rewrite.rewrite_saved_model(src, tmp_path / "step_out")


def test_tf_qdq_export_is_an_alias_of_saved_model_rewrite(tmp_path):
  """The former name keeps working: the module re-exports the public names,
  and `python -m tf_qdq.export` runs the same command line."""
  from tf_qdq import export  # pylint: disable=import-outside-toplevel
  assert export.__all__ == rewrite.__all__
  for name in rewrite.__all__:
    assert getattr(export, name) is getattr(rewrite, name), name
  done = subprocess.run([sys.executable, "-m", "tf_qdq.export", "--help"],
                        capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stdout.startswith("usage: python -m tf_qdq.export [-h] src dst")
  done = subprocess.run([sys.executable, "-m", "tf_qdq.export",
                         str(tmp_path / "missing"), str(tmp_path / "out")],
                        capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 1
  assert "tf_qdq.saved_model_rewrite: error:" in done.stderr
