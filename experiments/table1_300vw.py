"""The paper's Table I: 300-VW category 3, single image (cropped frames) and tracking.

  python experiments/table1_300vw.py                       # synthetic videos, runs/robustness
  python experiments/table1_300vw.py --data 300VW --workdir runs/paper-300w --frame-step 5
  python experiments/table1_300vw.py --quick               # smoke test

Single image: `python -m fadenn_tf.evaluate` on the annotated frames of the category-3
videos (index_300vw(root, category=3), every --frame-step-th frame), each cropped around its
ground-truth landmark box, clean only (as in Table I): AUC@0.08 and FR@0.08, diagonal NME.
Tracking: `python -m fadenn_tf.track --evaluate ROOT --category 3` per model (model-free
tracking, detector re-initialisation), if fadenn_tf.track is installed.
Models: the FLL and FADeNN-D/S/M of a robustness-study --workdir (those that exist), or
explicit --model LABEL=PATH. The paper's figures are printed beside ours for reference.
"""
import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

# Field notes: paper Table I, 300-VW category 3, (AUC, FR): single image, tracking.
PAPER = {"FLL": ((0.752, 0.017), (0.711, 0.022)), "FADeNN-D": ((0.756, 0.015), (0.718, 0.020)),
         "FADeNN-S": ((0.760, 0.013), (0.726, 0.020)), "FADeNN-M": ((0.764, 0.012), (0.729, 0.019))}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="300-VW root (default: synthetic videos)")
    p.add_argument("--workdir", default="runs/robustness", help="trained models (see "
                   "experiments/robustness.py)")
    p.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                   help="models to evaluate instead of those in --workdir")
    p.add_argument("--category", default="3", help="300-VW test category (default 3)")
    p.add_argument("--frame-step", type=int, default=5, help="every k-th annotated frame")
    p.add_argument("--out", default="results/table1_300vw")
    p.add_argument("--no-tracking", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke test: 24 frames")
    return p.parse_args(argv)


def find_models(a):
    if a.model:
        return [m.split("=", 1) for m in a.model]
    work = Path(a.workdir)
    cands = [("FLL", work / "fll" / "model.keras")] + [
        (f"FADeNN-{v}", work / f"joint-{v}" / "model.keras") for v in "DSM"]
    found = [(lbl, str(p)) for lbl, p in cands if p.is_file()]
    if not found:
        sys.exit(f"no trained model in {work}: run experiments/robustness.py first or pass "
                 "--model LABEL=PATH")
    return found


def main(argv=None):
    a = parse(argv)
    py = sys.executable
    if a.data:
        root = a.data
    else:
        from fadenn_tf.data.cache import resolve_data
        root = str(resolve_data(None, kind="300vw"))
    models = find_models(a)
    out = Path(a.out)
    cmd = [py, "-m", "fadenn_tf.evaluate", "--data", root, "--format", "300vw", "--split",
           f"cat{a.category}", "--conditions", "clean", "--frame-step", str(a.frame_step),
           "--out", str(out / "single_image")]
    for lbl, path in models:
        cmd += ["--model", f"{lbl}={path}"]
    if a.quick:
        cmd += ["--max-images", "24"]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    res = json.loads((out / "single_image" / "results.json").read_text())
    single = {r["model"]: (r["auc"], r["fr"]) for r in res["results"] if r["condition"] == "clean"}
    track = {}
    if a.no_tracking:
        print("tracking: skipped (--no-tracking)")
    elif importlib.util.find_spec("fadenn_tf.track") is None:
        print("tracking: not available yet (fadenn_tf.track is not installed)")
    else:
        for lbl, path in models:
            tout = out / f"tracking_{lbl}"
            tcmd = [py, "-m", "fadenn_tf.track", "--evaluate", root, "--model", path,
                    "--category", a.category, "--out", str(tout)]
            if a.quick:
                tcmd += ["--videos", *_first_videos(root, a.category, 1)]
            print("$ " + " ".join(tcmd), flush=True)
            r = subprocess.run(tcmd)
            track[lbl] = _read_tracking(tout / "tracking_results.json") if r.returncode == 0 \
                else None
    t = 0.08
    print(f"\nTable I, 300-VW category {a.category} ({root}), diagonal NME, AUC@{t} / FR@{t}; "
          f"single image on every {a.frame_step}th annotated frame")
    print(f"{'model':<10} | {'single image':>15} | {'tracking':>15} | paper (single / tracking)")
    for lbl, _ in models:
        s = single.get(lbl)
        tr = track.get(lbl)
        p = PAPER.get(lbl)
        fmt = lambda v: "n/a" if not v else f"{v[0]:.3f} / {v[1]:.3f}"  # noqa: E731
        print(f"{lbl:<10} | {fmt(s):>15} | {fmt(tr):>15} | "
              + (f"{fmt(p[0])} and {fmt(p[1])}" if p else ""))
    return 0


def _first_videos(root, category, n):
    from fadenn_tf.data.datasets import CATEGORIES_300VW, videos_300vw
    have = set(videos_300vw(root))
    return [v for v in CATEGORIES_300VW[int(category)] if v in have][:n]


def _read_tracking(path):
    """(AUC, FR) of the pooled tracking result, whatever the nesting of the file."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    for key in ("pooled", "overall", "all", "summary"):
        if isinstance(d.get(key), dict) and "auc" in d[key]:
            return d[key]["auc"], d[key]["fr"]
    if "auc" in d and "fr" in d:
        return d["auc"], d["fr"]
    return None


if __name__ == "__main__":
    sys.exit(main())
