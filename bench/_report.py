"""What run_benchmarks.py writes: docs/benchmarks.md, .json and .png.

benchmarks.md holds one headline table and one block of full results per
machine kind measured, keyed by CPU model and the ISA tf_qdq ran
(harness.machine_key). A run rewrites its own machine's blocks and keeps the
others (from the file, or from benchmarks.json's "other_machines"), so every
machine's numbers stay dated and labelled. The targets are computed from
each run's data; why one is missed is docs/performance.md's subject.
"""
import json
import os
import statistics

import numpy as np

import _harness as harness
from _cases import BOUND_SIZES, CASES, GRAPH_DTYPES, SIZES
from _marked import (QAT_STEP_END, QAT_STEP_START, block_markers,
                     marked_blocks, marked_section, read_text, replace_marked)

TARGET_BOUND = 1.15        # x traffic bound, float32 16M
TARGET_PER_CHANNEL = 40.0  # speedup over TF, per-channel ops, float32 16M
TARGET_HALF = 0.5 * TARGET_BOUND  # 16-bit time / float32 time, 16M

README_START = "<!-- bench:headline:start -->"
README_END = "<!-- bench:headline:end -->"
NOT_MEASURED = "not measured"

# ---- formatting --------------------------------------------------------------


def fmt_time(s):
  if s is None:
    return "-"
  if s >= 1e-3:
    return f"{s * 1e3:.2f} ms"
  return f"{s * 1e6:.1f} µs"


def fmt_x(v, digits=2):
  return "-" if v is None else f"{v:.{digits}f}x"


def fmt_gbs(v):
  if v is None:
    return "-"
  return f"{v:.1f}" if v >= 1 else f"{v:.2f}"


# ---- analysis ----------------------------------------------------------------


def index_results(results):
  return {(r["op"], r["dtype"], r["size"]): r for r in results}


def _target(text, rows, misses, note=None):
  """A target's record: checked over `rows`, missed by `misses` (strings),
  with a `note` when one is given."""
  t = {"target": text, "evaluated": bool(rows),
       "met": bool(rows) and not misses, "checked": len(rows),
       "misses": misses}
  return t if note is None else dict(t, note=note)


def evaluate_graph_targets(results):
  """The graph-mode targets (what training sees): the bound at 1M and 16M,
  and at least TF's speed at every size."""
  f32 = [r for r in results if r["dtype"] == "float32"]
  rows = [r for r in f32 if r["size"] in BOUND_SIZES]
  slow = [r for r in f32 if r["tf"]]
  return [
      _target(f"Graph mode: every op (per-tensor, per-channel on any axis, "
              f"forward and gradient), float32 at 1M and 16M values: within "
              f"{TARGET_BOUND}x of its graph-mode traffic bound", rows,
              [f"{r['label']}, {r['size']}: {r['x_bound']:.2f}x the bound"
               for r in rows if r["x_bound"] > TARGET_BOUND], ""),
      _target("Graph mode: every op at least as fast as TF's built-in at "
              "every size (float32)", slow,
              [f"{r['label']}, {r['size']}: {r['ours_over_tf']:.2f}x TF's time"
               for r in slow if r["ours_over_tf"] > 1.0], ""),
  ]


def evaluate_targets(results, cases):
  """Each eager-mode target, computed from the data."""
  idx = index_results(results)
  f32_16m = [idx[(c.key, "float32", "16M")] for c in cases
             if (c.key, "float32", "16M") in idx]
  targets = []

  # 1. float32 16M within TARGET_BOUND of the traffic bound.
  targets.append(_target(
      f"Eager mode: every op (per-tensor, per-channel on any axis, forward "
      f"and gradient), float32 at 16M values: within {TARGET_BOUND}x of its "
      f"eager traffic bound (page-fault floor)", f32_16m,
      [f"{r['label']}: {r['x_bound']:.2f}x the bound" for r in f32_16m
       if r["x_bound"] > TARGET_BOUND]))

  # 2. at least as fast as TF at every size (float32: the same op on the same
  #    input). 16-bit rows vs TF's float32 op are listed for information.
  rows = [r for r in results if r["dtype"] == "float32" and r["tf"]]
  rows16 = [r for r in results if r["dtype"] != "float32" and r["tf"]]
  slow16 = [r for r in rows16 if r["ours_over_tf"] > 1.0]
  targets.append(_target(
      "Eager mode: every op at least as fast as TF's built-in at every size "
      "(float32), 1K values included", rows,
      [f"{r['label']}, {r['size']}: {r['ours_over_tf']:.2f}x TF's time"
       for r in rows if r["ours_over_tf"] > 1.0],
      note=(f"16-bit rows vs TF's float32 op on a float32 copy: "
            f"{len(rows16) - len(slow16)} of {len(rows16)} at least as fast"
            if rows16 else "")))

  # 3. half / bfloat16 at about half of float32's time (16M).
  pairs, misses = 0, []
  for c in cases:
    r32 = idx.get((c.key, "float32", "16M"))
    for dt in ("float16", "bfloat16"):
      r16 = idx.get((c.key, dt, "16M"))
      if not (r32 and r16):
        continue
      pairs += 1
      ratio = r16["ours"]["median_s"] / r32["ours"]["median_s"]
      if ratio > TARGET_HALF:
        misses.append(f"{c.label}, {dt}: {ratio:.2f}x float32's time")
  targets.append(_target(
      f"Eager mode: half and bfloat16 take about half of float32's time at "
      f"16M (met when <= {TARGET_HALF:.3f}x, i.e. 0.5 x {TARGET_BOUND})",
      range(pairs), misses))

  # 4. per-channel at least 40x faster than TF at 16M float32. The most any
  #    kernel can gain is TF's time / the traffic bound: where that is under
  #    the target (TF already near the bound), say so.
  rows = [r for r in f32_16m if r["per_channel"]]
  misses = [(r["label"], r["speedup"], r["tf"]["median_s"] / r["bound_s"])
            for r in rows if r["speedup"] < TARGET_PER_CHANNEL]
  capped = sum(1 for _, _, cap in misses if cap < TARGET_PER_CHANNEL)
  targets.append(_target(
      f"Eager mode: per-channel ops at least {TARGET_PER_CHANNEL:.0f}x "
      f"faster than TF's at 16M values (float32)", rows,
      [f"{label}: {v:.1f}x (the traffic bound allows {cap:.1f}x)"
       for label, v, cap in misses],
      note=(f"{capped} of the misses cannot reach "
            f"{TARGET_PER_CHANNEL:.0f}x in this run even at the traffic "
            f"bound: TF's time there is under {TARGET_PER_CHANNEL:.0f}x the "
            "bound" if capped else "")))
  return targets


def headline_markdown(results, cases, all_cases=None):
  """The float32 16M table of `results`: a row per case of `cases` that ran
  or, with `all_cases`, a row per case there, "not measured" where none."""
  idx = index_results(results)
  rows = []
  for c in all_cases or cases:
    r = idx.get((c.key, "float32", "16M"))
    if r or all_cases:
      rows.append((c, r))
  if not any(r for _, r in rows):
    return ""

  def mark(v):
    return "-" if v is None else ("yes" if v else "NO")
  lines = ["| op | TF | tf_qdq | speedup | x traffic bound | "
           f"<= {TARGET_BOUND}x bound | >= TF | "
           f">= {TARGET_PER_CHANNEL:.0f}x TF (per channel) |",
           "|---|---:|---:|---:|---:|:---:|:---:|:---:|"]
  for c, r in rows:
    label = c.label + (f" ({c.tf_note})" if c.tf_note else "")
    if r is None:
      lines.append(f"| {label} |" + f" {NOT_MEASURED} |" * 7)
      continue
    # One verdict per target, so a reader sees which one a row misses.
    per_channel = r["speedup"] >= TARGET_PER_CHANNEL if c.per_channel else None
    lines.append(
        f"| {label} | {r['tf']['median_s'] * 1e3:.2f} ms | "
        f"{r['ours']['median_s'] * 1e3:.2f} ms | {r['speedup']:.1f}x | "
        f"{r['x_bound']:.2f}x ({r['factor']:.1f}x floor) | "
        f"{mark(r['x_bound'] <= TARGET_BOUND)} | "
        f"{mark(r['ours_over_tf'] <= 1.0)} | {mark(per_channel)} |")
  return "\n".join(lines)


def floor_scaling(results, cases, sizes):
  """Size -> median float32 floor time over the cases (the scaling check)."""
  idx = index_results(results)
  scaling = {}
  for size in sizes:
    fl = [idx[(c.key, "float32", size)]["floor"]["median_s"] for c in cases
          if (c.key, "float32", size) in idx]
    if fl:
      scaling[size] = statistics.median(fl)
  return scaling


# ---- benchmarks.md -----------------------------------------------------------

METHOD = [
    "Two modes, TF's default thread pools (their sizes: each machine's "
    "full results). **Graph mode** (float32; the headline): each contender "
    "is a `tf.function(autograph=False)` over prebuilt input tensors, called "
    "the way Keras calls a training step; TF's allocator hands the output "
    "buffer freed by the previous call back to the next, so the floor is the "
    "memory bandwidth. **Eager mode** (every dtype): plain calls. Each eager "
    "call allocates a fresh output and, at 16M values (64 MB), the allocator "
    "returns such a block to the OS and the next call page-faults it in "
    "again: the eager floor at 16M is several times the graph floor (compare "
    "the two 'floor' columns), and a kernel that is compute-bound up to that "
    "time looks 'at the bound'. The eager tables show what an interactive "
    "call costs; the graph tables what training sees.",
    "Contenders, for each case on the same inputs: **tf_qdq** (the public "
    "`tf_qdq.*` function), **TF** (the built-in: `tf.raw_ops."
    "QuantizeAndDequantizeV4`/`V4Grad`, `tf.quantization.fake_quant_*`; "
    "per-channel QDQ with a given range uses `tf.raw_ops."
    "QuantizeAndDequantizeV3`, since TF 2.21's V2/V4 reject every such input) "
    "and the **floor** (`tf.raw_ops.AddV2(x, 1)` in the case's dtype: one "
    "read, one write). Range tensors are prebuilt, so no contender pays a "
    "Python-to-tensor conversion per call.",
    "TF's built-ins exist for float32 only (QDQ also float64): in the "
    "float16/bfloat16 tables the TF column is **TF's float32 op on a "
    "pre-cast float32 copy** of the same values (the cast is not timed), "
    "while the floor and the traffic bound are in the 16-bit dtype (half the "
    "bytes).",
    "The three contenders run interleaved in rounds whose order rotates "
    "(A B C, B C A, C A B, ...), after a warm-up, in one process; the floor "
    "runs in the same mode as the op it bounds. Each call is timed with "
    "`time.perf_counter` around the call: CPU eager kernels execute "
    "synchronously, so the call returns once the output is computed "
    "(checked: the floor's time scales with size, in each machine's full "
    "results). Python's GC is off while timing; outputs are freed outside "
    "the timed region. Reported: the median per contender.",
    "Traffic bound = floor x 1.0 for one read and one write, floor x 1.5 for "
    "two reads and one write (a gradient: gradients + inputs; a computed "
    "range: one pass to find it, one to apply it). GB/s = the ideal traffic "
    "(elements x bytes per element x 2, or x 3) / median time; the TF column "
    "uses the same ideal bytes (of the row's dtype). Speedup = TF time / "
    "tf_qdq time.",
    "Shapes: 1K = [16, 64], 64K = [64, 1024], 1M = [1024, 1024], 16M = "
    "[16384, 1024]. Per-channel along the last axis has 64 channels at 1K "
    "and 1024 otherwise; along axis 0: 16, 64, 1024, 16384. 8 bits, range "
    "[-1, 1], inputs uniform in [-1.2, 1.2].",
    "tf_qdq writes float32 outputs of 16 MB and more (16M values) with "
    "streaming stores, which skip the read of each output line that a normal "
    "store does, and maps such an output in with one madvise per thread when "
    "the allocator has just mapped it (then each of its pages would fault on "
    "its first store); the floor (TF's `x + 1`) stores normally and faults "
    "page by page. So at 16M a one-pass op can take less than its traffic "
    "bound. Whether graph mode reuses the 64 MB output buffer depends on the "
    "machine: on the AMD EPYC measured here every call faulted it in "
    "afresh (1.2 million minor faults in 70 calls), so there the graph "
    "floor is a page-fault floor too.",
]


def _heading(meta):
  m = meta["machine"]
  return f"### {harness.machine_label(m)}: {m['date']}"


def _targets_lines(targets):
  out = []
  for t in targets:
    if not t["evaluated"]:
      status = "not evaluated (its cases were not run)"
    elif t["met"]:
      status = f"**met** ({t['checked']} checked)"
    else:
      status = f"**NOT met**: {len(t['misses'])} of {t['checked']} miss"
    out.append(f"- {t['target']}: {status}.")
    out.extend(f"  - {miss}" for miss in t["misses"])
    if t.get("note"):
      out.append(f"  - ({t['note']})")
  return out


def _headline_block(run):
  meta, cases = run["meta"], run["cases"]
  m = meta["machine"]
  mode = "graph" if run["graph_results"] else "eager"
  head = headline_markdown(run["graph_results"] or run["results"], cases,
                           CASES)
  isa = m.get("isa") or (f"{harness.isa_short(m)} (read from the CPU "
                         "flags: this run predates the ISA record)")
  out = [_heading(meta), "",
         f"{m['cpu']}, {m['nproc']} cores; ISA tf_qdq ran: {isa}. "
         f"{mode.capitalize()} mode"
         + ("" if mode == "graph" else " (this run had no graph mode)")
         + f"; TensorFlow {m['tensorflow']}, tf_qdq {m['tf_qdq']}. Targets "
         "and every size and dtype: this machine's full results below.", ""]
  if head:
    out += [head, "", "One column per target; '>= TF' compares medians, so "
            "1.00-1.05x rows are ties within this machine's noise. Why a "
            "target is missed: [performance.md](performance.md)."]
  else:
    out.append("No float32 16M values in this run: every row not measured.")
  return "\n".join(out)


def _full_tables(mode, results, dtypes, sizes, cases):
  out = []
  idx = index_results(results)
  for dt in dtypes:
    tf_head = "TF" if dt == "float32" else "TF (float32 op, f32 copy)"
    for size in sizes:
      rows = [idx[(c.key, dt, size)] for c in cases
              if (c.key, dt, size) in idx]
      if not rows:
        continue
      out.append(f"#### {mode} mode, {dt}, {size} values "
                 f"{list(SIZES[size])}\n")
      out.append(f"| op | bound | floor | {tf_head} | tf_qdq | speedup | "
                 "x bound | tf_qdq GB/s | TF GB/s |")
      out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
      for r in rows:
        label = r["label"] + (f" ({r['tf_note']})" if r["tf_note"] else "")
        out.append(
            f"| {label} | {r['factor']:.1f}x | "
            f"{fmt_time(r['floor']['median_s'])} | "
            f"{fmt_time(r['tf']['median_s'])} | "
            f"{fmt_time(r['ours']['median_s'])} | {fmt_x(r['speedup'])} | "
            f"{fmt_x(r['x_bound'])} | {fmt_gbs(r['ours_gbs'])} | "
            f"{fmt_gbs(r['tf_gbs'])} |")
      fl = statistics.median(r["floor_gbs"] for r in rows)
      note = ("" if size in ("1M", "16M") else " At this size per-call "
              "overhead dominates: 'x bound' says little, and can be below "
              "1.")
      out.append(f"\nFloor: {fmt_gbs(fl)} GB/s (median over the rows)."
                 f"{note}\n")
  return out


def _results_block(run):
  meta, cases, sizes = run["meta"], run["cases"], run["sizes"]
  m = meta["machine"]
  load = m.get("loadavg_start")
  out = [_heading(meta), ""]
  out.append(
      f"- CPU: {m['cpu']}, {m['nproc']} cores available"
      + (f" ({', '.join(m['simd'])})" if m["simd"] else "")
      + (f", {m['memory']} RAM" if m["memory"] else ""))
  if m.get("isa"):
    out.append(f"- ISA tf_qdq ran: {m['isa']}")
  out.append(f"- TensorFlow {m['tensorflow']}, tf_qdq {m['tf_qdq']} "
             f"(`{m['tf_qdq_path']}`), Python {m['python']}, NumPy "
             f"{m['numpy']}")
  out.append(f"- {m['date']}; suite ran {meta['runtime_s']:.0f} s"
             + (f"; load average at start {load[0]:.2f}, at end "
                f"{meta['loadavg_end'][0]:.2f}" if load and
                meta.get("loadavg_end") else ""))
  out.append(f"- TF's default thread pools: intra-op "
             f"{m['intra_op_threads']}, inter-op {m['inter_op_threads']} "
             "(0 = one per core).")
  out.append("- Rounds per case (after the warm-up calls): " + "; ".join(
      f"{size}: at least {p[0]}, at most {p[1]}, ending once the case has "
      f"run about {p[2]:g} s"
      for size, p in meta.get("timing_plan", {}).items())
      + (" (--quick)" if meta["options"]["quick"] else "") + ".")
  for key, text in (("floor_scaling", "Scaling check (float32 floor "
                     "medians, eager)"),
                    ("graph_floor_scaling", "The same in graph mode")):
    if meta.get(key):
      out.append(f"- {text}: " + ", ".join(
          f"{k}: {fmt_time(v)}" for k, v in meta[key].items()) + ".")
  out.append("\n#### Targets\n")
  out += _targets_lines(run["graph_targets"] + run["targets"])
  out.append("\nWhy a target is missed, what the profiles showed and what "
             "was tried: [performance.md](performance.md).\n")
  out += _full_tables("graph", run["graph_results"], GRAPH_DTYPES, sizes,
                      cases)
  out += _full_tables("eager", run["results"], run["dtypes"], sizes, cases)
  return "\n".join(out).rstrip()


def _run(data):
  """A run (benchmarks.json's layout) with its cases, sizes and targets."""
  meta = data["meta"]
  opts = meta["options"]
  cases = [c for c in CASES if c.key in opts["ops"]]
  graph_results = list(data.get("graph_results", []))
  results = list(data["results"])
  return {"meta": meta, "cases": cases, "sizes": opts["sizes"],
          "dtypes": opts["dtypes"], "results": results,
          "graph_results": graph_results,
          "graph_targets": (evaluate_graph_targets(graph_results)
                            if graph_results else []),
          "targets": evaluate_targets(results, cases),
          "key": harness.machine_key(meta["machine"])}


def _blocks(kind, blocks):
  out = []
  for key, body in blocks.items():
    start, end = block_markers(kind, key)
    out += [start, body, end, ""]
  return out


def write_markdown(path, run, others, png_name):
  """benchmarks.md: this run's blocks, and the other machines' as they were
  in the file (or rendered from `others`, benchmarks.json's runs)."""
  old = read_text(path)
  blocks = {}
  for kind, render in (("headline", _headline_block),
                       ("results", _results_block)):
    kept = marked_blocks(old, kind)
    for key, other in others.items():
      if key not in kept:
        kept[key] = render(other)
    kept[run["key"]] = render(run)
    blocks[kind] = kept
  m = run["meta"]["machine"]
  out = ["# tf-qdq benchmarks\n",
         "Generated by `bench/run_benchmarks.py` (`make bench`); do not edit "
         "by hand. One headline table and one block of full results per "
         "machine kind measured, each dated and labelled with its CPU model "
         "and the ISA tf_qdq ran: a run rewrites its own machine's blocks and "
         "keeps the others. A row a machine did not measure says so. Raw "
         "numbers: [benchmarks.json](benchmarks.json).\n",
         "## Headline: float32, 16M values (64 MB), one table per machine\n"]
  out += _blocks("headline", blocks["headline"])
  out.append("## Method\n")
  out += [f"- {item}" for item in METHOD]
  out.append("\nWhy the suite measures this way: "
             "[performance.md](performance.md), \"How we measure\".\n")
  if png_name:
    out.append("## Chart\n")
    out.append(f"![GB/s by op and size]({png_name})\n")
    out.append(f"Eager mode, every dtype and size: the latest run, "
               f"{harness.machine_label(m)}, {m['date']}.\n")
  # The QAT-step table is bench/qat_step.py's (it runs after this script in
  # `make bench` and rewrites this section); a re-render keeps what is there.
  qat = marked_section(path, QAT_STEP_START, QAT_STEP_END)
  out.append("## QAT training step (bench/qat_step.py)\n")
  out.append(QAT_STEP_START)
  out.append(qat or "Not run yet: `bench/qat_step.py` fills this section.")
  out.append(QAT_STEP_END + "\n")
  out.append("## Full results, per machine\n")
  out += _blocks("results", blocks["results"])
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(out).rstrip() + "\n")


# ---- benchmarks.png ----------------------------------------------------------


def write_png(path, results, cases, sizes, dtypes):
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  except ImportError:
    print("matplotlib is not installed: no PNG written "
          "(pip install -r requirements-demo.txt)", flush=True)
    return False
  idx = index_results(results)
  dts = [dt for dt in dtypes if any(r["dtype"] == dt for r in results)]
  szs = [s for s in sizes if any(r["size"] == s for r in results)]
  cs = [c for c in cases if any(r["op"] == c.key for r in results)]
  if not (dts and szs and cs):
    return False
  colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(szs)))
  fig, axes = plt.subplots(len(dts), 1,
                           figsize=(max(10, 0.95 * len(cs) + 3),
                                    4.2 * len(dts)),
                           squeeze=False, sharey=True)
  width = 0.8 / len(szs)
  xs = np.arange(len(cs))
  for ax, dt in zip(axes[:, 0], dts):
    for j, (size, color) in enumerate(zip(szs, colors)):
      ours, ref, floors = [], [], []
      for c in cs:
        r = idx.get((c.key, dt, size))
        ours.append(r["ours_gbs"] if r else np.nan)
        ref.append(r["tf_gbs"] if r and r["tf_gbs"] else np.nan)
        if r:
          floors.append(r["floor_gbs"])
      pos = xs - 0.4 + width * (j + 0.5)
      ax.bar(pos, ours, width, color=color, label=f"tf_qdq {size}")
      ax.scatter(pos, ref, marker="_", s=90, color="black", zorder=3,
                 label="TF built-in" if j == 0 else None)
      if floors:
        ax.axhline(statistics.median(floors), color=color, ls="--", lw=0.9,
                   label=f"floor {size}")
    ax.set_yscale("log")
    ax.yaxis.set_tick_params(labelleft=True)
    ax.set_ylabel("GB/s (ideal traffic / median time)")
    tf_desc = "" if dt == "float32" else " (TF: float32 op on a float32 copy)"
    ax.set_title(f"{dt}{tf_desc}")
    ax.set_xticks(xs)
    ax.set_xticklabels([c.key for c in cs], rotation=30, ha="right",
                       fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
  handles, labels = axes[0, 0].get_legend_handles_labels()
  order = sorted(range(len(labels)), key=lambda i: (
      0 if labels[i].startswith("tf_qdq") else
      1 if labels[i].startswith("floor") else 2, i))
  fig.suptitle("tf-qdq GB/s by op and size (bars); TF's built-in (black "
               "ticks); floor x + 1 (dashed)", fontsize=11)
  fig.legend([handles[i] for i in order], [labels[i] for i in order],
             fontsize=8, ncol=2 * len(szs) + 1, loc="upper center",
             bbox_to_anchor=(0.5, 0.975), frameon=False)
  fig.tight_layout(rect=(0, 0, 1, 0.95))
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True


# ---- benchmarks.json and the whole report ------------------------------------


def _other_machines(path, key):
  """The runs of other machines that benchmarks.json at `path` holds: its
  own run (when another machine's) and those it carried."""
  try:
    with open(path, encoding="utf-8") as f:
      old = json.load(f)
  except (OSError, ValueError):
    return {}
  others = dict(old.get("other_machines", {}))
  if "meta" in old:
    old_key = harness.machine_key(old["meta"]["machine"])
    others[old_key] = {k: old[k] for k in
                       ("meta", "targets", "graph_results", "results")
                       if k in old}
  others.pop(key, None)
  return others


def update_readme(path, results, cases, meta=None):
  """Replaces the text between the markers in `path`, when both are there,
  with the headline table under a line naming the machine and date (`meta`)
  it was measured on."""
  head = headline_markdown(results, cases)
  if head and meta is not None:
    machine = meta["machine"]
    head = (f"Measured on {harness.machine_label(machine)}, "
            f"{machine['date']}:\n\n" + head)
  return bool(head) and replace_marked(path, README_START, README_END, head)


def write_outputs(out_dir, readme, data, previous_json=None):
  """Writes benchmarks.{md,json,png} under out_dir for the run `data`
  (benchmarks.json's layout: meta, results, graph_results) and prints the
  summary. `previous_json`: where the other machines' runs come from
  (default: out_dir's benchmarks.json)."""
  run = _run(data)
  os.makedirs(out_dir, exist_ok=True)
  json_path = os.path.join(out_dir, "benchmarks.json")
  others = _other_machines(previous_json or json_path, run["key"])
  png_name = "benchmarks.png"
  wrote_png = write_png(os.path.join(out_dir, png_name), run["results"],
                        run["cases"], run["sizes"], run["dtypes"])
  write_markdown(os.path.join(out_dir, "benchmarks.md"), run,
                 {k: _run(v) for k, v in others.items()},
                 png_name if wrote_png else None)
  targets = run["graph_targets"] + run["targets"]
  out = {"meta": run["meta"], "targets": targets,
         "graph_results": run["graph_results"], "results": run["results"]}
  if others:
    out["other_machines"] = others
  with open(json_path, "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1)
    f.write("\n")

  print(f"\nsuite ran {run['meta']['runtime_s']:.0f} s; wrote "
        f"{out_dir}/benchmarks.md, benchmarks.json"
        + (", benchmarks.png" if wrote_png else ""))
  head_results = run["graph_results"] or run["results"]
  head = headline_markdown(head_results, run["cases"])
  if head:
    print(f"\nHeadline ({'graph' if run['graph_results'] else 'eager'} "
          "mode, float32, 16M values):\n" + head)
  print("\nTargets:")
  for t in targets:
    state = ("not evaluated" if not t["evaluated"] else
             "met" if t["met"] else f"NOT met ({len(t['misses'])} miss)")
    print(f"- {t['target']}: {state}")
    for miss in t["misses"]:
      print(f"    {miss}")
    if t.get("note"):
      print(f"    ({t['note']})")
  if readme and update_readme(readme, head_results, run["cases"],
                               run["meta"]):
    print(f"updated the headline table in {readme}")
