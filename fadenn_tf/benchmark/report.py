"""The benchmark result as bench.json and bench.md, and merging earlier results."""
import json
from pathlib import Path

from fadenn_tf.utils.atomic import write_json_atomic, write_text_atomic


def _fmt(v, spec):
    if v is None:
        return "-"
    return format(v, spec)


def format_markdown(result):
    """ONE Markdown table of a run_benchmark result, with the machine in its header."""
    m = result["machine"]
    peak = result.get("peak")
    st = result["settings"]
    lines = [
        f"## FADeNN benchmark: {m['cpu']} ({m['cores']} cores, {m['cpu_flags']}), "
        f"TensorFlow {m['tensorflow']}",
        "",
        f"{m['time']}; load average (1/5/15 min) {m['load_avg']} at start, "
        f"{m.get('load_avg_end')} at end"
        + (f" (per run: {m['load_avg_runs']})" if m.get("load_avg_runs") else "") + "; "
        f"medians of {st['repeats']} repeats after warm-up; data: {st['data']}; "
        + (f"matmul peak {peak['gflops']:.1f} GFLOP/s (float32 {peak['n']}^2, median). "
           if peak else "")
        + "FLOPs per face (1 multiply-add = 2); train GFLOP/s = 3 x forward FLOPs x images/s "
          "(estimate); inference: latency at batch 1, images/s at batch "
        + f"{st['infer_batch']}; the train, pipeline and inference rows use untrained models "
          "(speed does not depend on the weights), the api, detect and e2e rows name their "
          "model and data."
        + (f" A --quick run: skipped {st['quick_skipped']}." if st.get("quick_skipped") else ""),
        "",
        "| section | config | model | path | crop | batch | ms/face (b1) | images/s | "
        "MFLOPs/face | GFLOP/s | % peak | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        note = r.get("error") or r.get("note") or ""
        if r.get("size_mb") is not None:
            note = (note + "; " if note else "") + f"{r['size_mb']:.2f} MB"
        lines.append(
            f"| {r['section']} | {r['config']} | {r['model']} | {r['path']} | "
            f"{r.get('crop') or '-'} | {r.get('batch') or '-'} | "
            f"{_fmt(r.get('latency_ms_b1'), '.2f')} | {_fmt(r.get('images_per_s'), '.1f')} | "
            f"{_fmt(r['flops'] / 1e6 if r.get('flops') else None, '.1f')} | "
            f"{_fmt(r.get('gflops'), '.1f')} | {_fmt(r.get('pct_peak'), '.1f')} | {note} |")
    return "\n".join(lines) + "\n"


def write_results(result, out_dir):
    """Write bench.json and bench.md (atomically) into out_dir; returns the Markdown."""
    md = format_markdown(result)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "bench.json", result)
    write_text_atomic(out / "bench.md", md)
    return md


def merge_results(results):
    """One result from several run_benchmark results (e.g. sections run one after another):
    rows concatenated in order, one peak row holding the highest measured matmul median
    (contention only lowers it) and every % peak recomputed against it, machine of the first
    run with every run's load averages in "load_avg_runs"."""
    results = list(results)
    if not results:
        raise ValueError("nothing to merge")
    out = json.loads(json.dumps(results[0]))
    peaks = [r["peak"] for r in results if r.get("peak")]
    peak = max(peaks, key=lambda p: p["gflops"]) if peaks else None
    out["peak"] = peak
    out["machine"]["load_avg_runs"] = [[r["machine"]["load_avg"], r["machine"].get("load_avg_end")]
                                       for r in results]
    rows, have_peak = [], False
    for r in results:
        for row in r["rows"]:
            row = dict(row)
            if row["section"] == "peak":
                if have_peak:
                    continue
                have_peak = True
            rows.append(row)
    if peak:
        _repercent(rows, peak["gflops"])
    out["rows"] = rows
    out["settings"]["configs"] = sorted({c for r in results for c in r["settings"]["configs"]})
    out["wall_s"] = sum(r.get("wall_s", 0) for r in results)
    return out


def _row(section, config, model, path, **kw):
    r = {"section": section, "config": config, "model": model, "path": path}
    r.update(kw)
    return r


def _repercent(rows, peak_gflops):
    for row in rows:
        if row["section"] == "peak":
            row["gflops"] = peak_gflops
        elif row.get("gflops"):
            row["pct_peak"] = 100 * row["gflops"] / peak_gflops
