"""Fuzz test: random calls of every op (random dtypes, shapes with 0-size and
huge dims, attrs with int extremes and wrong types, values with NaN, inf, -0
and denormals), each run on every path: eager, tf.function (exact or
unknown-rank signatures), tf.function(jit_compile=True), tf_qdq.core and TF's
built-in op where it has a kernel and no documented deviation applies.

A call either raises on every path (TypeError, ValueError or
InvalidArgumentError, nothing else; XLA cannot raise value-dependent checks,
docs/semantics.md D15) or returns the same bits on every path. Each case runs
in a forked child (the harness of test_hostile_inputs.py), so an abort fails
its case instead of killing the run.

CI runs a bounded, deterministic sample (TF_QDQ_FUZZ_CASES, default 60, seed
TF_QDQ_FUZZ_SEED, default 13); `make fuzz` runs a longer one.
"""
import os
import random
import textwrap

import pytest

from _forked import run_in_forked_children

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")]

NUM_CASES = int(os.environ.get("TF_QDQ_FUZZ_CASES", "60"))
SEED = int(os.environ.get("TF_QDQ_FUZZ_SEED", "13"))

# Runs in the child: builds the call from a JSON spec and checks every path.
_RUNNER = textwrap.dedent('''
    import json
    from tf_qdq import core
    from tf_qdq.quantization import _as_tensor
    ALLOWED = (TypeError, ValueError, tf.errors.InvalidArgumentError)
    DT = {"bfloat16": tf.bfloat16, "float16": tf.float16, "float32": tf.float32,
          "float64": tf.float64, "int32": tf.int32}
    SPECIAL = [float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1e-310,
               -1e-41, 0.5, -0.5]

    def values(rng, shape, dt, specials):
        v = rng.uniform(-3, 3, shape)
        if specials and v.size:
            idx = rng.integers(0, v.size, max(1, v.size // 4))
            v.flat[idx] = rng.choice(SPECIAL, idx.size)
        return tf.cast(tf.constant(v, tf.float64), DT[dt]) if dt != "int32" \\
            else tf.constant(v.astype(np.int32))

    def outcome(fn):
        try:
            r = fn()
        except ALLOWED as e:
            return ("error", type(e).__name__, str(e).split("\\n")[0][:200])
        r = r if isinstance(r, (tuple, list)) else [r]
        return ("ok", [np.asarray(t.numpy() if hasattr(t, "numpy") else t)
                       for t in r])

    def bits(a):
        a = np.asarray(a)
        if a.dtype == object or a.dtype.kind != "f" and a.dtype.itemsize != 2:
            return a
        b = a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])
        nan = np.isnan(a.astype(np.float64))
        return np.where(nan, 0, b), nan

    def same(a, b, what):
        assert a[0] == "ok" and b[0] == "ok", (what, a[:3], b[:3])
        assert len(a[1]) == len(b[1]), what
        for i, (x, y) in enumerate(zip(a[1], b[1])):
            assert x.shape == y.shape, (what, i, x.shape, y.shape)
            bx, by = bits(x), bits(y)
            assert np.array_equal(bx[1], by[1]) and np.array_equal(bx[0], by[0]), (
                what, i, x.ravel()[:8], y.ravel()[:8])

    def run(spec):
        rng = np.random.default_rng(spec["seed"])
        dt, shape, op, attrs = spec["dtype"], spec["shape"], spec["op"], spec["attrs"]
        x = values(rng, shape, dt, spec["specials"])
        g = values(rng, shape, dt, spec["specials"])
        rdt = dt if spec["range_dtype_matches"] else "float32"
        lo = values(rng, spec["range_shape"], rdt, False)
        lo = -tf.abs(lo) if lo.dtype.is_floating else lo
        hi = lo + tf.cast(tf.abs(values(rng, spec["range_shape"], rdt, False)), lo.dtype) \\
            if lo.dtype.is_floating else lo
        if spec["reverse_range"]:
            lo, hi = hi, lo
        fn = getattr(tf_qdq, op)
        tensors = {"quantize_and_dequantize_v4": (x, lo, hi),
                   "quantize_and_dequantize_v2": (x, lo, hi),
                   "quantize_and_dequantize_v4_grad": (g, x, lo, hi),
                   "fake_quant_with_min_max_args": (x,),
                   "fake_quant_with_min_max_args_gradient": (g, x),
                   }.get(op, (g, x, lo, hi) if op.endswith("gradient") else (x, lo, hi))
        call = lambda *t: fn(*t, **attrs)
        eager = outcome(lambda: call(*tensors))
        sig = [tf.TensorSpec(None if spec["unknown_rank"] else t.shape, t.dtype)
               for t in tensors]
        graph = outcome(lambda: tf.function(call, input_signature=sig)(*tensors))
        xla = outcome(lambda: tf.function(call, input_signature=sig,
                                          jit_compile=True)(*tensors))
        if eager[0] == "error":
            assert graph[0] == "error", ("graph returned where eager raised", eager)
            value_check = "Invalid range" in eager[2]
            assert xla[0] == "error" or value_check, ("xla returned", eager)
        else:
            # TF's static shape functions check the range shapes even where
            # the kernel ignores them (range_given=False), as TF's do.
            if not (graph[0] == "error" and graph[1] == "ValueError"
                    and not spec["unknown_rank"]):
                same(eager, graph, "graph")
            same(eager, xla, "xla")
        if dt in ("float16", "float32", "float64") and op != "quantize_and_dequantize_v2":
            arrays = [t.numpy() for t in tensors]
            c = outcome(lambda: getattr(core, op)(*arrays, **attrs))
            if eager[0] == "ok":
                same(eager, c, "core")
        builtin = spec.get("builtin")
        if builtin and eager[0] == "ok":
            t = outcome(lambda: getattr(tf.quantization, builtin)(*tensors, **attrs))
            same(eager, t, "TF built-in")
''')

_OPS = ["quantize_and_dequantize_v4", "quantize_and_dequantize_v2",
        "quantize_and_dequantize_v4_grad", "fake_quant_with_min_max_args",
        "fake_quant_with_min_max_args_gradient", "fake_quant_with_min_max_vars",
        "fake_quant_with_min_max_vars_gradient",
        "fake_quant_with_min_max_vars_per_channel",
        "fake_quant_with_min_max_vars_per_channel_gradient"]
_INT_EXTREMES = [2**63 - 1, -2**63, 2**63, 2**64, -2**64 - 1, 2**31, "8", 8.0,
                 None]


def _pick(rng, common, rare, p_rare=0.15):
  return rng.choice(rare) if rng.random() < p_rare else rng.choice(common)


def _spec(rng, seed):
  op = rng.choice(_OPS)
  dtype = _pick(rng, ["float32", "float64", "float16", "bfloat16"], ["int32"],
                0.05)
  rank = rng.choice([0, 1, 1, 2, 2, 3])
  shape = [rng.choice([1, 2, 3, 5, 17, 64]) for _ in range(rank)]
  if rank and rng.random() < 0.1:
    shape[rng.randrange(rank)] = 0
    if rank > 1 and rng.random() < 0.5:  # a huge dim beside the zero
      shape[[i for i in range(rank) if shape[i] != 0][0]] = 2**31
  attrs, range_shape = {}, []
  if "quantize" in op and "fake" not in op:
    axis = _pick(rng, [None if op.endswith("v2") else -1] + list(range(rank)),
                 [rank, -2, 2**63, 2**31, None])
    if axis is not None:
      attrs["axis"] = axis
    if op != "quantize_and_dequantize_v4_grad":
      attrs["num_bits"] = _pick(rng, [2, 4, 8, 16, 30], _INT_EXTREMES + [0, 62])
      attrs["signed_input"] = _pick(rng, [True, False], [None, 1, "true"])
      attrs["range_given"] = _pick(rng, [True, False], [None])
      attrs["narrow_range"] = _pick(rng, [True, False], [None])
      attrs["round_mode"] = _pick(rng, ["HALF_TO_EVEN", "HALF_UP"],
                                  [b"HALF_UP", None, "UP"])
    per_channel = isinstance(axis, int) and 0 <= axis < rank and (
        not op.endswith("v2") or axis != -1)
    if op.endswith("v2") and isinstance(axis, int) and -rank <= axis < 0:
      per_channel = True
      axis %= rank
    range_shape = [shape[axis]] if per_channel else []
  else:
    attrs["num_bits"] = _pick(rng, [2, 4, 8, 16], _INT_EXTREMES + [1, 17])
    attrs["narrow_range"] = _pick(rng, [True, False], [None, 1])
    if "args" in op:
      lo, hi = rng.choice([(-6.0, 6.0), (-1.0, 1.0), (0.0, 2.0), (-0.3, 0.0),
                           (1.0, 1.0), (2.0, -2.0), (-1e-45, 1e-45),
                           (-1e-40, 1.0), (None, None)])
      attrs["min"], attrs["max"] = lo, hi
    elif "per_channel" in op:
      range_shape = [shape[-1] if rank else 1]
  if rng.random() < 0.1 or any(d >= 2**31 for d in range_shape):
    range_shape = rng.choice([[1], [1, 1], [2], [3, 1]])  # a wrong shape
  builtin = None
  tf_safe = dtype == "float32" or (dtype == "float64" and "fake" not in op)
  if tf_safe and 0 not in shape and rank:
    # tf.quantization's FakeQuant functions (the QDQ data ranges and the
    # Vars gradient sums have documented deviations).
    builtin = op if op in ("fake_quant_with_min_max_args",
                           "fake_quant_with_min_max_args_gradient",
                           "fake_quant_with_min_max_vars",
                           "fake_quant_with_min_max_vars_per_channel") else None
  spec = dict(op=op, dtype=dtype, shape=shape, attrs=attrs, seed=seed,
              range_shape=range_shape, specials=rng.random() < 0.5,
              unknown_rank=rng.random() < 0.4,
              range_dtype_matches=rng.random() > 0.05,
              reverse_range=rng.random() < 0.1)
  if builtin:
    spec["builtin"] = builtin
  return spec


def _specs():
  rng = random.Random(SEED)
  return [_spec(rng, SEED * 100003 + i) for i in range(NUM_CASES)]


@pytest.fixture(scope="module")
def fuzz_results():
  specs = _specs()
  cases = [(f"fuzz_{i}", _RUNNER + f"\nrun({s!r})\n")
           for i, s in enumerate(specs)]
  return specs, run_in_forked_children(cases)


def test_fuzz_every_path_agrees(fuzz_results):
  specs, results = fuzz_results
  failures = []
  for i, spec in enumerate(specs):
    r = results[f"fuzz_{i}"]
    last = r["stdout"].splitlines()[-1:] if r["stdout"] else []
    if r["rc"] != 0 or last != ["NO EXCEPTION"]:
      failures.append(f"case {i} {spec!r}: rc {r['rc']}, "
                      f"{r['stdout'][-600:]} {r['stderr'][-600:]}")
  assert not failures, "\n".join(failures[:5]) + f"\n({len(failures)} failed)"


def test_fuzz_sample_covers_the_space():
  specs = _specs()
  assert len({s["op"] for s in specs}) == len(_OPS) or NUM_CASES < 40
  assert any(0 in s["shape"] for s in specs) or NUM_CASES < 40
