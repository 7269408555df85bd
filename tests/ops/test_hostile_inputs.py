"""Hostile inputs (docs/semantics.md §9): every CVE trigger that maps onto a tf-qdq op, the
three aborts still reachable in TF 2.21 mapped onto our ops, and a few 16-bit
variants. Each must end in a Python exception, never in a crash.

Every case runs in its own process, so that an abort or a segfault fails only
that case and is reported as such. To keep this cheap, one helper process
(started with sys.executable, in this environment) imports TensorFlow and
tf_qdq once and then forks a fresh child per case; the child runs the case and
prints the exception it got. The helper reports each child's exit status (0, or
minus the signal number) and its output. A child that hangs is killed and its
case re-run in a brand-new interpreter.
"""
import os
import textwrap

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")]

from _forked import fresh_interpreter, run_in_forked_children

# name -> (code, expected exception class, expected message fragment)
CASES = {}


def case(name, code, exc, message):
  assert name not in CASES
  CASES[name] = (textwrap.dedent(code), exc, message)


IAE = "InvalidArgumentError"

# ---- CVE-2020-15265: QDQ V2 with axis beyond the rank (issue #42105) ----------
case("cve_2020_15265_legacy_axis_10", """
    tf_qdq.quantize_and_dequantize(tf.constant([1., 2., 3.]), -1., 1., axis=10)
    """, IAE, "Shape must be at least rank 11 but is rank 1")
case("cve_2020_15265_v2_axis_10_range_given", """
    tf_qdq.quantize_and_dequantize_v2(tf.constant([1., 2., 3.]), tf.zeros([11]),
                                      tf.ones([11]), range_given=True, axis=10)
    """, IAE, "Shape must be at least rank 11 but is rank 1")
# ---- CVE-2021-29610: axis < -1 slipped through the QDQ V2 kernel ---------------
case("cve_2021_29610_v4_axis_minus_2", """
    R.tf_qdq_quantize_and_dequantize_v4(
        input=tf.ones([2, 3]), input_min=tf.zeros([2]), input_max=tf.ones([2]),
        range_given=True, axis=-2)
    """, IAE, "Axis must be at least -1. Found -2")
# ---- CVE-2021-29553: unchecked axis indexes the input dims (V3) ----------------
case("cve_2021_29553_v4_axis_past_rank", """
    R.tf_qdq_quantize_and_dequantize_v4(
        input=tf.ones([3]), input_min=tf.zeros([3]), input_max=tf.ones([3]),
        range_given=True, axis=3)
    """, IAE, "Shape must be at least rank 4 but is rank 1")
# ---- CVE-2021-29544: V4Grad min/max of an unexpected rank -> vec() CHECK -------
case("cve_2021_29544_v4grad_min_rank_2", """
    x = tf.ones([2, 2], tf.float64)
    R.tf_qdq_quantize_and_dequantize_v4_grad(
        gradients=x, input=x, input_min=tf.zeros([1, 1], tf.float64),
        input_max=tf.ones([1, 1], tf.float64), axis=1)
    """, IAE, "Input min tensor must have dimension 0 or 1. Received 2.")
case("cve_2021_29544_v4grad_empty_range", """
    x = tf.ones([2, 2], tf.float64)
    R.tf_qdq_quantize_and_dequantize_v4_grad(
        gradients=x, input=x, input_min=tf.zeros([0], tf.float64),
        input_max=tf.zeros([0], tf.float64), axis=1)
    """, IAE, "min has incorrect size, expected 2 was 0")
# ---- CVE-2021-37645: V4Grad axis=-100 ------------------------------------------
case("cve_2021_37645_v4grad_axis_minus_100", """
    x = tf.ones([2, 3])
    R.tf_qdq_quantize_and_dequantize_v4_grad(
        gradients=x, input=x, input_min=tf.zeros([3]), input_max=tf.ones([3]),
        axis=-100)
    """, IAE, "Axis must be at least -1. Found -100")
# ---- CVE-2021-41205: axis=-100 inside tf.function (shape functions) ----------
case("cve_2021_41205_v4_tf_function", """
    @tf.function
    def f(x):
        return R.tf_qdq_quantize_and_dequantize_v4(
            input=x, input_min=tf.zeros([3]), input_max=tf.ones([3]), axis=-100)
    f(tf.ones([2, 3]))
    """, "ValueError", "axis should be at least -1, got -100")
case("cve_2021_41205_v4grad_tf_function", """
    @tf.function
    def f(x):
        return R.tf_qdq_quantize_and_dequantize_v4_grad(
            gradients=x, input=x, input_min=tf.zeros([3]), input_max=tf.ones([3]),
            axis=-100)
    f(tf.ones([2, 3]))
    """, "ValueError", "axis should be at least -1, got -100")
# ---- CVE-2022-29192: V4Grad non-scalar min/max with axis -1 ------------------
case("cve_2022_29192_v4grad_vector_min", """
    x = tf.ones([4])
    R.tf_qdq_quantize_and_dequantize_v4_grad(
        gradients=x, input=x, input_min=tf.zeros([2]), input_max=tf.ones([2]))
    """, IAE, "input_min must be a scalar if axis is unspecified")
case("cve_2022_29192_v4grad_vector_max", """
    x = tf.ones([4])
    R.tf_qdq_quantize_and_dequantize_v4_grad(
        gradients=x, input=x, input_min=tf.constant(0.), input_max=tf.ones([1]))
    """, IAE, "input_max must be a scalar if axis is unspecified")
# ---- CVE-2022-35971: FakeQuantWithMinMaxVars min/max of shape [2,3] ----------
case("cve_2022_35971_vars_min_2x3", """
    tf_qdq.fake_quant_with_min_max_vars(tf.ones([2, 3]), tf.zeros([2, 3]),
                                        tf.ones([2, 3]))
    """, IAE, "`min` must be rank 0 but is rank 2")
# ---- CVE-2022-36019: PerChannel min of shape [4,0,0] ------------------------
case("cve_2022_36019_per_channel_min_4x0x0", """
    tf_qdq.fake_quant_with_min_max_vars_per_channel(
        tf.ones([2, 4]), tf.zeros([4, 0, 0]), tf.ones([4]))
    """, IAE, "`min` must be rank 1 but is rank 3")
# ---- CVE-2022-36005: FakeQuantWithMinMaxVarsGradient min/max (2,2) -----------
case("cve_2022_36005_vars_gradient_min_2x2", """
    x = tf.ones([3])
    tf_qdq.fake_quant_with_min_max_vars_gradient(x, x, tf.zeros([2, 2]),
                                                 tf.ones([2, 2]))
    """, IAE, "`min` must be rank 0 but is rank 2")
# ---- CVE-2022-35990: PerChannelGradient min/max (1,1) ------------------------
case("cve_2022_35990_per_channel_gradient_min_1x1", """
    x = tf.ones([2, 1])
    tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(
        x, x, tf.zeros([1, 1]), tf.ones([1, 1]))
    """, IAE, "`min` must be rank 1 but is rank 2")
# ---- CVE-2022-41910 / CVE-2023-25668: axis=0x7fffffff -------------------------
case("cve_2022_41910_v2_python_tf_function", """
    @tf.function
    def f(x):
        return tf_qdq.quantize_and_dequantize_v2(
            x, tf.zeros([2]), tf.ones([2]), range_given=True, axis=0x7fffffff)
    f(tf.ones([2, 2]))
    """, "ValueError", "Axis cannot be >= kint32max value, got 2147483647")
case("cve_2023_25668_v4_unknown_rank_tf_function", """
    f = tf.function(lambda x, a, b: R.tf_qdq_quantize_and_dequantize_v4(
        input=x, input_min=a, input_max=b, axis=0x7fffffff),
        input_signature=[U, U, U])
    f.get_concrete_function()
    """, "ValueError", "Axis cannot be >= kint32max value, got 2147483647")
case("cve_2023_25668_v4grad_tf_function", """
    @tf.function
    def f(x):
        return R.tf_qdq_quantize_and_dequantize_v4_grad(
            gradients=x, input=x, input_min=tf.zeros([2]), input_max=tf.ones([2]),
            axis=0x7fffffff)
    f(tf.ones([2, 2]))
    """, "ValueError", "Axis cannot be >= kint32max value, got 2147483647")
case("cve_2022_41910_v4_eager", """
    R.tf_qdq_quantize_and_dequantize_v4(
        input=tf.ones([2]), input_min=tf.zeros([2]), input_max=tf.ones([2]),
        axis=0x7fffffff)
    """, IAE, "Shape must be at least rank -2147483648 but is rank 1")
case("cve_2022_41910_v4grad_eager", """
    x = tf.ones([2])
    R.tf_qdq_quantize_and_dequantize_v4_grad(
        gradients=x, input=x, input_min=tf.zeros([2]), input_max=tf.ones([2]),
        axis=0x7fffffff)
    """, IAE, "Axis should be -1 or 0 or a positive value less than 1but given "
              "axis value was 2147483647")
# ---- still reachable in TF 2.21 (process aborts there), mapped onto our ops ----
# 1. V3 with a non-1-element given range and axis -1 -> our V4, range_given
case("abort1_v4_range_given_min_shape_2", """
    tf_qdq.quantize_and_dequantize_v4(tf.ones([4]), tf.zeros([2]), tf.constant(1.),
                                      range_given=True)
    """, IAE, "input_min must be a scalar.")
case("abort1_v4_range_given_max_shape_3", """
    tf_qdq.quantize_and_dequantize_v4(tf.ones([4]), tf.constant(0.), tf.ones([3]),
                                      range_given=True)
    """, IAE, "input_max must be a scalar.")
case("abort1_v4_range_given_unknown_rank_tf_function", """
    f = tf.function(lambda x, a, b: tf_qdq.quantize_and_dequantize_v4(
        x, a, b, range_given=True), input_signature=[U, U, U])
    f(tf.ones([4]), tf.zeros([2]), tf.ones([2]))
    """, IAE, "input_min must be a scalar.")
# 2. V3 with axis in [-rank, -2] -> our V4 with axis=-2
case("abort2_v4_axis_minus_2_eager", """
    tf_qdq.quantize_and_dequantize_v4(tf.ones([2, 3]), tf.zeros([2]), tf.ones([2]),
                                      range_given=True, axis=-2)
    """, IAE, "Axis must be at least -1. Found -2")
case("abort2_v4_axis_minus_2_tf_function", """
    f = tf.function(lambda x, a, b: tf_qdq.quantize_and_dequantize_v4(
        x, a, b, range_given=True, axis=-2), input_signature=[U, U, U])
    f.get_concrete_function()
    """, "ValueError", "axis should be at least -1, got -2")
case("abort2_v4grad_axis_minus_2", """
    x = tf.ones([2, 3])
    tf_qdq.quantize_and_dequantize_v4_grad(x, x, tf.zeros([2]), tf.ones([2]),
                                           axis=-2)
    """, IAE, "Axis must be at least -1. Found -2")
# 3. per-channel FakeQuant with a scalar input
case("abort3_per_channel_scalar_input", """
    tf_qdq.fake_quant_with_min_max_vars_per_channel(
        tf.constant(1.), tf.zeros([1]), tf.ones([1]))
    """, IAE, "rank 0")
case("abort3_per_channel_gradient_scalar_input", """
    x = tf.constant(1.)
    tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(
        x, x, tf.zeros([1]), tf.ones([1]))
    """, IAE, "rank 0")
case("abort3_per_channel_scalar_input_unknown_rank_tf_function", """
    f = tf.function(lambda x, a, b: tf_qdq.fake_quant_with_min_max_vars_per_channel(
        x, a, b), input_signature=[U, U, U])
    f(tf.constant(1.), tf.zeros([1]), tf.ones([1]))
    """, IAE, "rank 0")
case("abort3_per_channel_gradient_scalar_unknown_rank_tf_function", """
    f = tf.function(lambda g, x, a, b:
        tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(g, x, a, b),
        input_signature=[U, U, U, U])
    f(tf.constant(1.), tf.constant(1.), tf.zeros([1]), tf.ones([1]))
    """, IAE, "rank 0")
# ---- 16-bit dtypes --------------------------------------------------------------
case("half_per_channel_scalar_input", """
    h = lambda v: tf.constant(v, tf.float16)
    tf_qdq.fake_quant_with_min_max_vars_per_channel(h(1.), h([0.]), h([1.]))
    """, IAE, "rank 0")
case("bfloat16_per_channel_gradient_scalar_input", """
    b = lambda v: tf.constant(v, tf.bfloat16)
    tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(b(1.), b(1.), b([0.]),
                                                             b([1.]))
    """, IAE, "rank 0")
case("bfloat16_vars_gradient_min_2x2", """
    b = lambda v: tf.constant(v, tf.bfloat16)
    x = b([1., 2., 3.])
    tf_qdq.fake_quant_with_min_max_vars_gradient(x, x, tf.zeros([2, 2], tf.bfloat16),
                                                 tf.ones([2, 2], tf.bfloat16))
    """, IAE, "`min` must be rank 0 but is rank 2")
case("half_v4grad_axis_minus_100", """
    x = tf.ones([2, 3], tf.float16)
    tf_qdq.quantize_and_dequantize_v4_grad(x, x, tf.zeros([3], tf.float16),
                                           tf.ones([3], tf.float16), axis=-100)
    """, IAE, "Axis must be at least -1. Found -100")
case("bfloat16_v4_axis_int32_max", """
    x = tf.ones([2], tf.bfloat16)
    tf_qdq.quantize_and_dequantize_v4(x, tf.zeros([2], tf.bfloat16),
                                      tf.ones([2], tf.bfloat16), axis=0x7fffffff)
    """, IAE, "Shape must be at least rank -2147483648 but is rank 1")
case("half_v4_range_given_min_shape_2", """
    x = tf.ones([4], tf.float16)
    tf_qdq.quantize_and_dequantize_v4(x, tf.zeros([2], tf.float16),
                                      tf.constant(1., tf.float16), range_given=True)
    """, IAE, "input_min must be a scalar.")
# ---- graph-mode shape functions fed hostile ranks ---------------------------------
case("shape_fn_per_channel_gradient_scalar_gradients_unknown_inputs", """
    f = tf.function(lambda g, x, a, b:
        tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(g, x, a, b))
    f.get_concrete_function(tf.TensorSpec([], tf.float32), U, U, U)
    """, "ValueError", "Shape must be at least rank 1 but is rank 0")
case("shape_fn_per_channel_gradient_scalar_inputs_unknown_gradients", """
    f = tf.function(lambda g, x, a, b:
        tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(g, x, a, b))
    f.get_concrete_function(U, tf.TensorSpec([], tf.float32), U, U)
    """, "ValueError", "Shape must be at least rank 1 but is rank 0")
case("shape_fn_v4grad_scalar_gradients_unknown_input", """
    f = tf.function(lambda g, x, a, b:
        tf_qdq.quantize_and_dequantize_v4_grad(g, x, a, b, axis=0))
    f.get_concrete_function(tf.TensorSpec([], tf.float32), U, U, U)
    """, "ValueError", "Shape must be at least rank 1 but is rank 0")
case("shape_fn_v4_axis_int32_max_minus_1", """
    f = tf.function(lambda x, a, b: tf_qdq.quantize_and_dequantize_v4(
        x, a, b, axis=0x7ffffffe))
    f.get_concrete_function(tf.TensorSpec([2, 3], tf.float32), U, U)
    """, "ValueError", "Shape must be at least rank 2147483647 but is rank 2")

# ---- issue 13: integer attrs outside int64 ----------------------------------
# TF's fast path leaves Python's OverflowError pending and the next TF call
# aborts (`Check failed: !PyErr_Occurred()`); tf_qdq rejects such attrs before
# any TF call, on the first call and on every later one.
for _name, _call in {
    "v4_num_bits_2_64": "tf_qdq.quantize_and_dequantize_v4(tf.zeros([2]), 0., 1., "
                        "num_bits=2**64)",
    "v2_num_bits_minus_2_64_minus_1": "tf_qdq.quantize_and_dequantize_v2("
                                      "tf.zeros([2]), 0., 1., num_bits=-2**64-1)",
    "legacy_num_bits_2_64": "tf_qdq.quantize_and_dequantize(tf.zeros([2]), 0., "
                            "1., num_bits=2**64)",
    "vars_num_bits_2_64": "tf_qdq.fake_quant_with_min_max_vars(tf.zeros([2]), "
                          "0., 1., num_bits=2**64)",
    "vars_gradient_num_bits_2_64": "tf_qdq.fake_quant_with_min_max_vars_gradient("
                                   "tf.zeros([2]), tf.zeros([2]), 0., 1., "
                                   "num_bits=2**64)",
    "per_channel_num_bits_minus_2_64": "tf_qdq.fake_quant_with_min_max_vars_"
                                       "per_channel(tf.zeros([2]), [0., 0.], "
                                       "[1., 1.], num_bits=-2**64)",
    "args_num_bits_2_63": "tf_qdq.fake_quant_with_min_max_args(tf.zeros([2]), "
                          "num_bits=2**63)",
    "v4_axis_2_63": "tf_qdq.quantize_and_dequantize_v4(tf.zeros([2]), 0., 1., "
                    "axis=2**63)",
    "v4_grad_axis_minus_2_63_minus_1": "tf_qdq.quantize_and_dequantize_v4_grad("
                                       "tf.zeros([2]), tf.zeros([2]), 0., 1., "
                                       "axis=-2**63-1)",
    "v4_num_bits_2_64_in_tf_function": "tf.function(lambda x: tf_qdq."
                                       "quantize_and_dequantize_v4(x, 0., 1., "
                                       "num_bits=2**64))(tf.zeros([2]))",
    "v4_num_bits_2_64_under_xla": "tf.function(lambda x: tf_qdq."
                                  "quantize_and_dequantize_v4(x, 0., 1., "
                                  "num_bits=2**64), jit_compile=True)("
                                  "tf.zeros([2]))",
}.items():
  _attr = "axis" if "axis" in _name else "num_bits"
  # Twice, then one more TF call: TF's built-in aborts on the second call.
  case(f"int64_overflow_{_name}", f"""
      for _ in range(2):
          try:
              {_call}
          except ValueError as e:
              err = e
      tf.zeros([1]) + 1
      raise err
      """, "ValueError", f"Attr '{_attr}' is an int64")

# ---- issue 13: empty inputs with a huge channel dim return at once ------------
# (no workspace sized by the depth: it once sized 52 TB, stalled 20 s and
# raised ResourceExhaustedError). exc None: the case must return.
case("empty_input_depth_2_40", """
    import time
    t = time.time()
    y = tf_qdq.quantize_and_dequantize_v4(
        tf.zeros([0, 2**40], tf.float64), tf.zeros([1], tf.float64),
        tf.zeros([1], tf.float64), axis=1)
    assert y.shape == (0, 2**40) and y.dtype == tf.float64, y
    assert time.time() - t < 5, time.time() - t
    """, None, None)
case("empty_input_depth_2_31_axis_0", """
    import time
    t = time.time()
    for signed in (True, False):
        y = tf_qdq.quantize_and_dequantize_v4(
            tf.zeros([2**31, 0], tf.float64), tf.zeros([1], tf.float64),
            tf.zeros([1], tf.float64), axis=0, signed_input=signed)
        assert y.shape == (2**31, 0), y
    assert time.time() - t < 5, time.time() - t
    """, None, None)
case("empty_input_depth_2_31_core", """
    import time
    from tf_qdq import core
    t = time.time()
    y = core.quantize_and_dequantize_v4(np.zeros([2**31, 0]), 0., 0., axis=0)
    assert y.shape == (2**31, 0), y
    assert time.time() - t < 5, time.time() - t
    """, None, None)
case("empty_gradient_input_range_backprops_are_zeros", """
    x = tf.zeros([0, 5], tf.float32)
    _, dmin, dmax = tf_qdq.fake_quant_with_min_max_vars_per_channel_gradient(
        x, x, -tf.ones([5]), tf.ones([5]))
    assert dmin.shape == (5,) and not np.any(np.signbit(dmin.numpy())), dmin
    assert np.array_equal(dmin.numpy(), np.zeros(5)), dmin
    assert np.array_equal(dmax.numpy(), np.zeros(5)), dmax
    _, dmin, dmax = tf_qdq.quantize_and_dequantize_v4_grad(
        x, x, -tf.ones([5]), tf.ones([5]), axis=1)
    assert np.array_equal(dmin.numpy(), np.zeros(5)), dmin
    """, None, None)

XFAIL = {}  # name -> reason, for a hostile input we do not yet handle

# Harness self-checks: a crash in a child is reported, and does not stop the rest.
SELF_CHECKS = {
    "selfcheck_abort": "os.abort()",
    "selfcheck_tf_per_channel_scalar_aborts": """
        tf.raw_ops.FakeQuantWithMinMaxVarsPerChannel(
            inputs=tf.constant(1.), min=tf.zeros([1]), max=tf.ones([1]))
        """,
}


@pytest.fixture(scope="module")
def results():
  cases = [(n, c[0]) for n, c in CASES.items()]
  cases += [(n, textwrap.dedent(c)) for n, c in SELF_CHECKS.items()]
  out = run_in_forked_children(cases)
  for name, code in cases:  # a hung child: try again in a fresh interpreter
    if out[name]["rc"] == "timeout":
      out[name] = fresh_interpreter(code)
  return out


def _params():
  for name in CASES:
    marks = ()
    if name in XFAIL:
      marks = pytest.mark.xfail(strict=True, reason=XFAIL[name])
    yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", list(_params()))
def test_hostile_input_raises_cleanly(results, name):
  _, exc, message = CASES[name]
  r = results[name]
  assert r["rc"] == 0, (
      f"child died with {r['rc']}; stderr tail:\n{r['stderr'][-1500:]}")
  if exc is None:  # must return
    assert r["stdout"].splitlines()[-1:] == ["NO EXCEPTION"], r["stdout"]
    return
  lines = [l for l in r["stdout"].splitlines() if l.startswith("EXCEPTION ")]
  assert lines, f"no exception raised; stdout:\n{r['stdout']}"
  got = lines[-1]
  assert got.startswith(f"EXCEPTION {exc}: "), got
  assert message in got, got


def test_harness_reports_an_abort(results):
  assert results["selfcheck_abort"]["rc"] == -6


def test_harness_reports_tf_abort_on_per_channel_scalar(results):
  """TF 2.21's own kernel aborts here (docs/semantics.md §6, §9): the harness sees it, and
  the other cases still ran."""
  r = results["selfcheck_tf_per_channel_scalar_aborts"]
  assert r["rc"] == -6, r
  assert "Check failed" in r["stderr"]


def test_fresh_interpreter_runner():
  r = fresh_interpreter(CASES["cve_2022_35971_vars_min_2x3"][0])
  assert r["rc"] == 0, r["stderr"]
  assert "EXCEPTION InvalidArgumentError: " in r["stdout"]
  assert "`min` must be rank 0 but is rank 2" in r["stdout"]
