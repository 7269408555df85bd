#!/usr/bin/env python3
"""tf-qdq benchmark suite: every op against TensorFlow's built-in and the floor.

Not part of the tests. `make bench` runs it against the installed wheel; from a
source checkout, `PYTHONPATH=. .venv/bin/python bench/run_benchmarks.py` uses
the tree. It writes, under --out (default docs/):

  benchmarks.md    per machine kind measured (CPU model and ISA): the float32
                   16M headline table, the targets (computed from the data)
                   and full tables per mode, dtype and size; and the method
  benchmarks.json  the raw numbers (other machines' runs kept beside them)
  benchmarks.png   GB/s by op and size, one panel per dtype (needs matplotlib)

Two modes: graph (each contender a `tf.function`, as Keras trains; float32;
the headline) and eager (plain calls; every dtype). tf_qdq, TF's built-in and
the floor `x + 1` run interleaved in one process and the medians are compared.
What is measured: _cases.py; how it is timed: _harness.py; what is written:
_report.py; why this way: docs/performance.md, "How we measure".
"""
import argparse
import fnmatch
import gc
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=wrong-import-position
import _harness as harness  # noqa: E402
import _report as report  # noqa: E402
from _cases import (CASES, DTYPES, GRAPH_DTYPES, MODES, QUICK_SIZES,  # noqa: E402
                    SIZES, floor_fn, make_inputs, result, timing_plan)


def parse_list(value, allowed, what):
  if value is None:
    return None
  items = [v.strip() for v in value.split(",") if v.strip()]
  out = []
  for item in items:
    hits = [a for a in allowed if fnmatch.fnmatch(a, item)]
    if not hits:
      sys.exit(f"unknown {what} {item!r}; choose from {', '.join(allowed)}")
    out.extend(h for h in hits if h not in out)
  return [a for a in allowed if a in out]


def run_cases(cases, sizes, graph_dtypes, eager_dtypes, quick):
  """Times every case; returns (eager results, graph results)."""
  total = len(cases) * len(sizes) * (len(graph_dtypes) + len(eager_dtypes))
  print(f"{total} cases: {len(cases)} ops x sizes {','.join(sizes)} x "
        f"graph: {','.join(graph_dtypes) or '-'}, eager: "
        f"{','.join(eager_dtypes) or '-'}", flush=True)
  results, graph_results = [], []
  n = 0
  fmt = report.fmt_time
  for size in sizes:
    plan = timing_plan(size, quick)
    for mode, dts, out in (("graph", graph_dtypes, graph_results),
                           ("eager", eager_dtypes, results)):
      for dt_name in dts:
        d = make_inputs(SIZES[size], DTYPES[dt_name])
        # The floor runs in the same mode as the op it bounds.
        floor = harness.in_mode(floor_fn(d), mode)
        for c in cases:
          n += 1
          ours, ref = c.build(d)
          fns = {"ours": harness.in_mode(ours, mode),
                 "tf": harness.in_mode(ref, mode), "floor": floor}
          t0 = time.perf_counter()
          s = harness.time_interleaved(fns, *plan)
          took = time.perf_counter() - t0
          r = result(c, mode, dt_name, size,
                     {k: harness.summarize(v) for k, v in s.items()}, took)
          out.append(r)
          print(f"[{n:3d}/{total}] {mode:5s} {dt_name:8s} {size:>3s} "
                f"{c.key:27s} tf_qdq {fmt(r['ours']['median_s']):>9s}  "
                f"TF {fmt(r['tf']['median_s']):>9s}  "
                f"floor {fmt(r['floor']['median_s']):>9s}  "
                f"speedup {r['speedup']:6.2f}x  {r['x_bound']:5.2f}x bound  "
                f"({r['rounds']} rounds, {took:.1f} s)", flush=True)
        del d, floor
        gc.collect()
  return results, graph_results


def main(argv=None):
  here = os.path.dirname(os.path.abspath(__file__))
  root = os.path.dirname(here)
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--quick", action="store_true",
                 help=f"only {' and '.join(QUICK_SIZES)}, fewer rounds")
  p.add_argument("--sizes", help=f"comma list of {', '.join(SIZES)}")
  p.add_argument("--ops", help="comma list of op keys (globs allowed): "
                 + ", ".join(c.key for c in CASES))
  p.add_argument("--dtypes", help=f"comma list of {', '.join(DTYPES)}")
  p.add_argument("--modes", help=f"comma list of {', '.join(MODES)} "
                 "(default both; graph mode runs float32 only)")
  p.add_argument("--out", default=os.path.join(root, "docs"),
                 help="output folder (default: docs/ of the checkout)")
  p.add_argument("--readme", default=os.path.join(root, "README.md"),
                 help="README whose headline table (between the markers "
                 f"{report.README_START} and {report.README_END}) is "
                 "replaced, if it has them; '' for none")
  p.add_argument("--list", action="store_true", help="list the cases and exit")
  p.add_argument("--render", metavar="JSON",
                 help="no timing: rewrite the outputs from an earlier run's "
                 "benchmarks.json")
  args = p.parse_args(argv)

  if args.list:
    for c in CASES:
      print(f"{c.key:28s} {c.factor:.1f}x floor  {c.label}")
    return 0

  if args.render:
    with open(args.render, encoding="utf-8") as f:
      data = json.load(f)
    report.write_outputs(args.out, args.readme, data, args.render)
    return 0

  sizes = parse_list(args.sizes, list(SIZES), "size") or (
      QUICK_SIZES if args.quick else list(SIZES))
  dtypes = parse_list(args.dtypes, list(DTYPES), "dtype") or list(DTYPES)
  op_keys = parse_list(args.ops, [c.key for c in CASES], "op") or [
      c.key for c in CASES]
  cases = [c for c in CASES if c.key in op_keys]
  modes = parse_list(args.modes, MODES, "mode") or list(MODES)

  machine = harness.machine_info()
  print("tf-qdq benchmarks: " + harness.describe(machine), flush=True)
  graph_dtypes = ([d for d in dtypes if d in GRAPH_DTYPES]
                  if "graph" in modes else [])
  eager_dtypes = dtypes if "eager" in modes else []
  t_start = time.perf_counter()
  results, graph_results = run_cases(cases, sizes, graph_dtypes, eager_dtypes,
                                     args.quick)
  meta = {
      "machine": machine, "runtime_s": time.perf_counter() - t_start,
      "loadavg_end": harness.loadavg(),
      "options": {"quick": args.quick, "sizes": sizes, "dtypes": dtypes,
                  "modes": modes, "ops": [c.key for c in cases]},
      "timing_plan": {size: timing_plan(size, args.quick) for size in sizes},
      "targets_spec": {"bound": report.TARGET_BOUND,
                       "per_channel_speedup": report.TARGET_PER_CHANNEL,
                       "half_ratio": report.TARGET_HALF},
      "floor_scaling": report.floor_scaling(results, cases, sizes),
      "graph_floor_scaling": report.floor_scaling(graph_results, cases,
                                                  sizes),
  }
  report.write_outputs(args.out, args.readme,
                       {"meta": meta, "results": results,
                        "graph_results": graph_results})
  return 0


if __name__ == "__main__":
  sys.exit(main())
