#!/usr/bin/env python3
"""Write the results of a tools/perf/compare.sh run into docs/performance.md
(between its results markers; the method text around them is kept) and draw
docs/img/performance.svg.

  make_report.py --dir RUN_DIR [--md docs/performance.md] [--svg docs/img/performance.svg]

RUN_DIR holds what compare.sh collected: ours-*.json (`convtranspose bench
--json`, one file per thread count), torch.json (bench_torch.py), ort.json
(bench_ort.mjs) and meta.json (date, machine, versions). A missing or broken
file leaves its columns as n/a.
"""
import argparse
import glob
import html
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import CASES, case_info  # noqa: E402

PEAK_GFLOPS = 355.0  # bench-cases.md: 2048^3 sgemm, OpenBLAS, both cores
PEAK_GBS = 30.0      # bench-cases.md: 256 MB copy, read plus write

# Goals of the project: speed-up over the faster engine; ours / floor.
GOALS = {
    "K1_audio_fir2x": (10.0, 3.0),
    "K3_audio_mid": (1.5, None),
    "K4_audio_hifigan": (1.2, None),
    "K5_video_sr2x_2d": (10.0, 3.0),
    "K6_video_sr2x_3d": (10.0, 3.0),
    "K7_video_fsrcnn": (1.5, None),
    "K8_video_interp_t2": (10.0, 3.0),
}
STREAM_SLACK = 1.10  # stream within 10% of one-shot

BEGIN = "<!-- results:begin"
END = "<!-- results:end -->"


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"make_report: {path}: {e}", file=sys.stderr)
        return None


def fmt_ms(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_x(v, digits=1):
    return "n/a" if v is None else f"{v:.{digits}f}x"


def collect(run_dir):
    ours = {}  # (name, mode) -> {threads: ms}
    for path in sorted(glob.glob(os.path.join(run_dir, "ours-*.json"))):
        for r in load(path) or []:
            ours.setdefault((r["name"], r["mode"]), {})[r["threads"]] = r["ms"]
    engines = {}  # (engine, config, name) -> record
    probe = None
    for fname in ("torch.json", "ort.json"):
        for r in load(os.path.join(run_dir, fname)) or []:
            if r.get("engine") == "probe":
                probe = r
            else:
                engines[(r["engine"], r["config"], r["name"])] = r
    meta = load(os.path.join(run_dir, "meta.json")) or {}
    return ours, engines, probe, meta


def best_of(d):
    """(ms, threads) of the fastest thread count, or (None, None)."""
    if not d:
        return None, None
    t = min(d, key=lambda k: d[k])
    return d[t], t


def engine_ms(r):
    """An engine's time for a record; for ONNX Runtime, less the node
    binding's copy of the output."""
    ms = r["ms"]
    if r["engine"] == "onnxruntime":
        ms -= r.get("output_copy_ms", 0.0)
        if ms <= 0:
            ms = r["ms"]
    return ms


def engine_best(engines, engine, name):
    """The engine's fastest configuration for a case: (ms, record)."""
    recs = [r for (e, _, n), r in engines.items() if e == engine and n == name]
    if not recs:
        return None, None
    r = min(recs, key=engine_ms)
    return engine_ms(r), r


def config_order(engines, engine):
    seen = []
    for (e, c, _), r in engines.items():
        if e == engine:
            for t in r.get("ms_by_threads", {}):
                if (c, t) not in seen:
                    seen.append((c, t))
    return seen


def rows(ours, engines):
    out = []
    for case in CASES:
        name = case[0]
        if not (any(k[0] == name for k in ours) or any(k[2] == name for k in engines)):
            continue  # not in this run (compare.sh --cases)
        info = case_info(case)
        fl_ms = info["flops"] / (PEAK_GFLOPS * 1e6)
        mem_ms = info["bytes"] / (PEAK_GBS * 1e6)
        one, one_t = best_of(ours.get((name, "oneshot")))
        stream, stream_t = best_of(ours.get((name, "stream")))
        torch_ms, torch_r = engine_best(engines, "pytorch", name)
        ort_ms, ort_r = engine_best(engines, "onnxruntime", name)
        others = [v for v in (torch_ms, ort_ms) if v is not None]
        faster = min(others) if others else None
        row = {
            "name": name, "info": info, "floor": max(fl_ms, mem_ms),
            "bound": "memory" if mem_ms > fl_ms else "FLOPs",
            "one": one, "one_t": one_t, "stream": stream, "stream_t": stream_t,
            "torch": torch_ms, "torch_r": torch_r, "ort": ort_ms, "ort_r": ort_r,
            "speedup": faster / one if (faster and one) else None,
            "x_floor": one / max(fl_ms, mem_ms) if one else None,
            "stream_ratio": stream / one if (stream and one) else None,
        }
        want_speed, want_floor = GOALS[name]
        checks = []
        if row["speedup"] is not None:
            checks.append(row["speedup"] >= want_speed)
        if want_floor and row["x_floor"] is not None:
            checks.append(row["x_floor"] <= want_floor)
        if row["stream_ratio"] is not None:
            checks.append(row["stream_ratio"] <= STREAM_SLACK)
        complete = row["speedup"] is not None and row["stream_ratio"] is not None
        row["met"] = ("yes" if all(checks) else "no") if complete else (
            "no" if not all(checks) else "n/a")
        out.append(row)
    return out


def gflops(info, ms):
    return "n/a" if not ms else f"{info['flops'] / (ms * 1e6):.1f}"


def threads_note(t):
    return "" if t is None else f" ({t})"


def engine_note(r):
    return "" if r is None else f" ({r['threads']}, {r['config']})"


def short_path(path, root):
    """A library path, relative to the repository when it lies inside."""
    if not path:
        return "unknown"
    rel = os.path.relpath(path, root)
    return path if rel.startswith("..") else rel


def results_markdown(ours, engines, probe, meta, svg_rel, root):
    rs = rows(ours, engines)
    L = []
    L.append(f"{BEGIN} (written by tools/perf/make_report.py from a "
             "tools/perf/compare.sh run; edit the text outside the markers) -->")
    L.append("")
    L.append("## Results")
    L.append("")
    L.append(f"Run of {meta.get('date', 'unknown date')} on "
             f"{meta.get('cpu_model', 'unknown CPU')} ({meta.get('cores', '?')} cores, "
             f"{meta.get('simd', 'SIMD unknown')}). Load average "
             f"{meta.get('load_start', '?')} at the start and "
             f"{meta.get('load_end', '?')} at the end of the run.")
    if busy(meta):
        L.append(f"**Other work was running on the machine (load over 0.5 on "
                 f"{meta.get('cores', '?')} cores): these figures are noisy, "
                 "compare only figures within this run.**")
    L.append("")
    L.append(f"![Time per case, log scale: ours, PyTorch, ONNX Runtime, and the floor]({svg_rel})")
    L.append("")
    L.append("Milliseconds for the whole input, median of repeats, each at its best "
             "thread count (in parentheses; for PyTorch and ONNX Runtime also the "
             "fastest of the configurations measured, below). GFLOP/s as "
             "bench-cases.md counts FLOPs. The floor is max(FLOPs / 355 GFLOP/s, "
             "bytes / 30 GB/s), bytes = input + output, float32, each once. "
             "Speed-up: the faster of PyTorch and ONNX Runtime over our one-shot "
             "time. ONNX Runtime's figure is its `session.run` less the node "
             "binding's copy of the output (see below).")
    L.append("")
    L.append("| case | ours one-shot ms | GFLOP/s | ours stream ms | GFLOP/s | "
             "bytes (MB) | floor ms | ours / floor | PyTorch ms | ONNX Runtime ms | "
             "speed-up |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rs:
        L.append(
            f"| {r['name']} | {fmt_ms(r['one'])}{threads_note(r['one_t'])} | "
            f"{gflops(r['info'], r['one'])} | {fmt_ms(r['stream'])}{threads_note(r['stream_t'])} | "
            f"{gflops(r['info'], r['stream'])} | {r['info']['bytes'] / 1e6:.1f} | "
            f"{fmt_ms(r['floor'])} ({r['bound']}) | {fmt_x(r['x_floor'])} | "
            f"{fmt_ms(r['torch'])}{engine_note(r['torch_r'])} | "
            f"{fmt_ms(r['ort'])}{engine_note(r['ort_r'])} | {fmt_x(r['speedup'])} |")
    L.append("")
    L.append("### Goals")
    L.append("")
    L.append("| case | speed-up goal | speed-up | floor goal | ours / floor | "
             "stream / one-shot (goal <= 1.10) | met |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rs:
        want_speed, want_floor = GOALS[r["name"]]
        L.append(
            f"| {r['name']} | >= {want_speed:g}x | {fmt_x(r['speedup'])} | "
            f"{'<= %gx' % want_floor if want_floor else '-'} | "
            f"{fmt_x(r['x_floor']) if want_floor else '-'} | "
            f"{'n/a' if r['stream_ratio'] is None else '%.2f' % r['stream_ratio']} | "
            f"{r['met']} |")
    met = sum(r["met"] == "yes" for r in rs)
    L.append("")
    L.append(f"{met} of {len(rs)} cases meet all their goals in this run.")
    L.append("")
    L.append("### Ours by thread count")
    L.append("")
    thread_counts = sorted({t for d in ours.values() for t in d})
    L.append("| case | mode | " + " | ".join(f"{t} thread{'s' if t > 1 else ''} ms"
                                               for t in thread_counts) + " |")
    L.append("| --- | --- |" + " ---: |" * len(thread_counts))
    names = [r["name"] for r in rs]
    for n in names:
        for mode in ("oneshot", "stream"):
            d = ours.get((n, mode), {})
            L.append(f"| {n} | {mode} | " +
                     " | ".join(fmt_ms(d.get(t)) for t in thread_counts) + " |")
    L.append("")
    L.append("### The other engines in detail")
    L.append("")
    for engine, title in (("pytorch", "PyTorch"), ("onnxruntime", "ONNX Runtime")):
        cols = config_order(engines, engine)
        if not cols:
            continue
        copy_cols = [c for c in dict.fromkeys(c for c, _ in cols)] if engine == "onnxruntime" else []
        L.append(f"{title}, ms by configuration and threads:")
        L.append("")
        L.append("| case | " + " | ".join(f"{c}, {t} thread{'' if t == '1' else 's'}"
                                          for c, t in cols) +
                 "".join(f" | output copy ({c})" for c in copy_cols) + " |")
        L.append("| --- |" + " ---: |" * (len(cols) + len(copy_cols)))
        for n in names:
            recs = {c: engines.get((engine, c, n)) for c in dict.fromkeys(c for c, _ in cols)}
            cells = [fmt_ms(recs[c]["ms_by_threads"].get(t)) if recs[c] else "n/a"
                     for c, t in cols]
            cells += [fmt_ms(recs[c].get("output_copy_ms")) if recs[c] else "n/a"
                      for c in copy_cols]
            L.append(f"| {n} | " + " | ".join(cells) + " |")
        L.append("")
    L.append("ONNX Runtime's columns are whole `session.run` calls, output copy included.")
    L.append("")
    L.append("### Machine and versions")
    L.append("")
    any_torch = next((r for (e, c, _), r in engines.items()
                      if e == "pytorch" and c == "openblas-thp"), None)
    any_torch_oob = next((r for (e, c, _), r in engines.items()
                          if e == "pytorch" and c == "out-of-box"), None)
    any_ort = next((r for (e, c, _), r in engines.items() if e == "onnxruntime"), None)
    L.append(f"- CPU: {meta.get('cpu_model', 'unknown')}, {meta.get('cores', '?')} cores; "
             f"kernel {meta.get('kernel', '?')}")
    L.append(f"- SIMD flags: {meta.get('simd', 'unknown')}")
    if probe:
        L.append(f"- This machine in this run: {probe['sgemm_gflops']} GFLOP/s "
                 f"(2048^3 sgemm, OpenBLAS through PyTorch, {probe['threads']} threads), "
                 f"{probe['copy_gbs']} GB/s (256 MB copy, read plus write); the floor "
                 "above keeps bench-cases.md's 355 GFLOP/s and 30 GB/s.")
    if any_torch:
        L.append(f"- PyTorch {any_torch['torch']}: openblas-thp with BLAS "
                 f"`{short_path(any_torch['blas'], root)}`"
                 f" (OpenBLAS kernel {any_torch['openblas_core'] or 'n/a'}), "
                 f"GLIBC_TUNABLES=`{any_torch['glibc_tunables'] or 'unset'}`; "
                 f"default intra-op threads {any_torch['default_threads']}.")
    if any_torch_oob:
        L.append(f"- PyTorch out of the box: BLAS `{any_torch_oob['blas']}`, "
                 f"{any_torch_oob['default_threads']} thread(s), default malloc.")
    if any_ort:
        L.append(f"- ONNX Runtime {any_ort.get('onnxruntime', '?')} (npm onnxruntime-node, "
                 f"CPU execution provider), node {meta.get('node', '?')}.")
    L.append(f"- Our build: {meta.get('ours_build', '?')}; commit {meta.get('commit', '?')}.")
    if meta.get("flags"):
        L.append("")
        L.append("<details><summary>All CPU flags (lscpu)</summary>")
        L.append("")
        L.append(meta["flags"])
        L.append("")
        L.append("</details>")
    L.append("")
    L.append(END)
    return "\n".join(L) + "\n", rs


SKELETON = """# Performance

{results}"""


def write_md(path, block):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = SKELETON.format(results=BEGIN + " -->\n" + END + "\n")
    i, j = text.find(BEGIN), text.find(END)
    if i < 0 or j < 0:
        text = text.rstrip("\n") + "\n\n" + block
    else:
        text = text[:i] + block + text[j + len(END):].lstrip("\n")
    with open(path, "w") as f:
        f.write(text)


def busy(meta):
    """Whether the load average says other work shared the machine."""
    try:
        return max(float(str(meta.get(k, "0")).split()[0])
                   for k in ("load_start", "load_end")) > 0.5
    except (ValueError, IndexError):
        return False


def noisy_note(meta):
    return " - machine busy, figures noisy" if busy(meta) else ""


def svg_chart(rs, meta):
    series = [("ours (one-shot)", "one", "#1b9e77"), ("PyTorch", "torch", "#d95f02"),
              ("ONNX Runtime", "ort", "#7570b3")]
    vals = [r[k] for r in rs for _, k, _ in series if r[k]] + [r["floor"] for r in rs]
    lo = 10 ** math.floor(math.log10(min(vals))) if vals else 0.1
    hi = 10 ** math.ceil(math.log10(max(vals))) if vals else 1000
    left, right, top = 170, 90, 74
    width = 900
    bar, gap = 13, 16
    group = len(series) * bar + gap
    height = top + group * len(rs) + 40
    plot_w = width - left - right

    def x(v):
        return left + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    e = html.escape
    S = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" '
         'font-size="12">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{left}" y="20" font-size="15" font-weight="bold">ConvTranspose cases: '
         'milliseconds for the whole input (log scale, shorter is faster)</text>',
         f'<text x="{left}" y="38" fill="#555">{e(meta.get("date", ""))} - '
         f'{e(meta.get("cpu_model", ""))}, {e(str(meta.get("cores", "?")))} cores - '
         f'median of repeats, best thread count{e(noisy_note(meta))}</text>']
    lx = left
    for label, _, color in series:
        S.append(f'<rect x="{lx}" y="50" width="12" height="12" fill="{color}"/>')
        S.append(f'<text x="{lx + 17}" y="60">{e(label)}</text>')
        lx += 30 + 8 * len(label)
    S.append(f'<line x1="{lx}" y1="48" x2="{lx}" y2="64" stroke="black" stroke-width="2"/>')
    S.append(f'<text x="{lx + 6}" y="60">floor</text>')
    d = lo
    while d <= hi * 1.0001:
        gx = x(d)
        S.append(f'<line x1="{gx:.1f}" y1="{top - 4}" x2="{gx:.1f}" '
                 f'y2="{height - 34}" stroke="#ddd"/>')
        S.append(f'<text x="{gx:.1f}" y="{height - 18}" text-anchor="middle" fill="#555">'
                 f'{d:g} ms</text>')
        d *= 10
    for gi, r in enumerate(rs):
        gy = top + gi * group
        S.append(f'<text x="{left - 8}" y="{gy + len(series) * bar / 2 + 4:.1f}" '
                 f'text-anchor="end">{e(r["name"])}</text>')
        for si, (label, key, color) in enumerate(series):
            y = gy + si * bar
            v = r[key]
            if not v:
                S.append(f'<text x="{left + 4}" y="{y + bar - 3}" fill="#999" '
                         f'font-size="10">{e(label)}: n/a</text>')
                continue
            S.append(f'<rect x="{left}" y="{y}" width="{max(x(v) - left, 1):.1f}" '
                     f'height="{bar - 2}" fill="{color}"><title>{e(label)}: '
                     f'{fmt_ms(v)} ms</title></rect>')
            note = ""
            if key == "one" and r["speedup"]:
                sp = r["speedup"]
                note = (f" ms, {sp:.1f}x faster than the faster engine" if sp >= 1 else
                        f" ms, {1 / sp:.1f}x slower than the faster engine")
            S.append(f'<text x="{x(v) + 4:.1f}" y="{y + bar - 3}" font-size="10">'
                     f'{fmt_ms(v)}{e(note)}</text>')
        fx = x(r["floor"])
        S.append(f'<line x1="{fx:.1f}" y1="{gy - 2}" x2="{fx:.1f}" '
                 f'y2="{gy + len(series) * bar}" stroke="black" stroke-width="2">'
                 f'<title>floor: {fmt_ms(r["floor"])} ms ({r["bound"]})</title></line>')
    S.append(f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{height - 34}" stroke="#333"/>')
    S.append("</svg>")
    return "\n".join(S) + "\n"


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="the run's JSON files")
    ap.add_argument("--md", default=os.path.join(root, "docs", "performance.md"))
    ap.add_argument("--svg", default=os.path.join(root, "docs", "img", "performance.svg"))
    args = ap.parse_args()
    ours, engines, probe, meta = collect(args.dir)
    svg_rel = os.path.relpath(args.svg, os.path.dirname(os.path.abspath(args.md)))
    block, rs = results_markdown(ours, engines, probe, meta, svg_rel, root)
    write_md(args.md, block)
    os.makedirs(os.path.dirname(os.path.abspath(args.svg)), exist_ok=True)
    with open(args.svg, "w") as f:
        f.write(svg_chart(rs, meta))
    for r in rs:
        print(f"{r['name']:20s} ours {fmt_ms(r['one']):>7s} ms  stream {fmt_ms(r['stream']):>7s}"
              f"  torch {fmt_ms(r['torch']):>7s}  ort {fmt_ms(r['ort']):>7s}  "
              f"speed-up {fmt_x(r['speedup']):>7s}  floor {fmt_x(r['x_floor']):>7s}  "
              f"goals met: {r['met']}")


if __name__ == "__main__":
    main()
