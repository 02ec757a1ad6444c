"""Put trained models into the package as its `pretrained` weights (fadenn_tf/pretrained/).

    python experiments/ship_pretrained.py --fll runs/real/fll [--fadenn-m runs/real/joint-M]

Each model (a .keras file, a stage folder or a workdir; files saved before model format 1
are converted) is written in format 1 with float16-stored weights, then loaded back and
compared with the original on built-in synthetic crops: the largest landmark change (crop
pixels) and the file sizes are printed. The package may grow by at most 25 MB in all.
"""
import argparse
import sys
import tempfile
from pathlib import Path

BUDGET_MB = 25.0


def ship(source, name, config_name=None):
    """Write `source` as the shipped model `name`; returns (path, MB, max landmark change px)."""
    import numpy as np
    from fadenn_tf import pretrained
    from fadenn_tf.data.cache import resolve_data
    from fadenn_tf.data.datasets import open_dataset
    from fadenn_tf.data.pipeline import load_eval_data
    from fadenn_tf.deploy.saved_model import resolve_model_path
    from fadenn_tf.inference import load_any
    from fadenn_tf.models.io import load_model_and_metadata, save_float16_copy, save_model
    src = resolve_model_path(source)
    model, meta = load_model_and_metadata(src)
    dst = Path(str(pretrained.__file__)).parent / pretrained.NAMES[name] / "model.keras"
    with tempfile.TemporaryDirectory() as tmp:
        full = save_model(model, Path(tmp) / "model.keras", variant=meta.get("variant"),
                          config_name=config_name or meta.get("config_name"))
        save_float16_copy(full, dst)
    before, after = load_any(src), load_any(dst)
    samples, _ = open_dataset(resolve_data(None), split="test")
    crops = load_eval_data(samples[:32], before.size).images.astype(np.float32)
    diff = np.abs(before.predict_crops(crops)["landmarks"]
                  - after.predict_crops(crops)["landmarks"]).max()
    return dst, dst.stat().st_size / 2 ** 20, float(diff)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fll", help="the FLL alone -> pretrained-fll")
    p.add_argument("--fadenn-m", help="FADeNN-M -> pretrained")
    p.add_argument("--config-name", default=None, help="config name recorded in model.json")
    a = p.parse_args(argv)
    total = 0.0
    for name, source in (("pretrained-fll", a.fll), ("pretrained", a.fadenn_m)):
        if source:
            dst, mb, diff = ship(source, name, a.config_name)
            total += mb
            print(f"{name}: {dst} ({mb:.1f} MB; float16 weights change the landmarks by at "
                  f"most {diff:.4f} crop px on 32 synthetic test crops)")
    print(f"package growth from these files: {total:.1f} MB (budget {BUDGET_MB:.0f} MB)")
    return 0 if total <= BUDGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
