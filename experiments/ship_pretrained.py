"""Put trained models into the package as its `pretrained` weights (fadenn_tf/pretrained/).

    python experiments/ship_pretrained.py --fll runs/real/fll [--fadenn-m runs/real/joint-M]
    python experiments/ship_pretrained.py --litert     # LiteRT copies of the shipped .keras

Each model (a .keras file, a stage folder or a workdir; files saved before model format 1
are converted) is written in format 1 with float16-stored weights, then loaded back and
compared with the original on built-in synthetic crops: the largest landmark change (crop
pixels) and the file sizes are printed. The package may grow by at most 25 MB in all.

--litert (also done after --fll / --fadenn-m) converts each shipped model.keras to what
fadenn_tf.load(name) runs: int8 weights (dynamic_int8), dynamic batch, as routed parts for
FADeNN-M (deploy.routed) or one landmarks-only graph for the FLL, into
fadenn_tf/pretrained/<folder>/litert-int8/, with shipped.json (source sha256, parity). It
is written only when it agrees with the Keras model on 32 synthetic test crops, clean and
under each noise type at level 2 (applied to the crop): mean landmark difference at most
0.5 and largest at most 4 crop pixels (128-px crop), the same noise class for at least 90%
of the crops (PARITY_* below). The LiteRT copies may add at most 15 MB (LITERT_BUDGET_MB).
"""
import argparse
import sys
import tempfile
from pathlib import Path

BUDGET_MB = 25.0
LITERT_BUDGET_MB = 15.0
PARITY_MEAN_PX = 0.5          # crop pixels (128-px crop), mean over crops and points
PARITY_MAX_PX = 4.0           # crop pixels, the largest point difference
PARITY_CLASS_AGREEMENT = 0.9  # share of crops with the Keras model's noise class


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
                          config_name=config_name or meta.get("config_name"),
                          crop_scale=meta.get("crop_scale"))
        save_float16_copy(full, dst)
    before, after = load_any(src), load_any(dst)
    samples, _ = open_dataset(resolve_data(None), split="test")
    crops = load_eval_data(samples[:32], before.size,
                           scale=before.crop_scale).images.astype(np.float32)
    diff = np.abs(before.predict_crops(crops)["landmarks"]
                  - after.predict_crops(crops)["landmarks"]).max()
    return dst, dst.stat().st_size / 2 ** 20, float(diff)


def parity_crops(size, scale, n=32):
    """n synthetic test crops [5n, size, size, 3] float32 0..255 (`scale` x the face box):
    clean, then each noise type at level 2 applied to the crop (so that every expert of a
    FADeNN-M runs)."""
    import numpy as np
    from fadenn_tf.data.cache import resolve_data
    from fadenn_tf.data.datasets import open_dataset
    from fadenn_tf.data.pipeline import load_eval_data
    from fadenn_tf.noise import NUM_TYPES, degrade_images
    samples, _ = open_dataset(resolve_data(None), split="test")
    clean = load_eval_data(samples[:n], size, scale=scale).images.astype(np.uint8)
    return np.concatenate([clean] + [degrade_images(clean, t, 2, t) for t in
                                     range(1, NUM_TYPES)]).astype(np.float32)


def compare(reference, candidate, crops):
    """Parity of `candidate` against `reference` (CropModels) on crops -> dict: mean / max
    landmark difference (crop px), noise class agreement (None without a classifier)."""
    import numpy as np
    a, b = reference.predict_crops(crops), candidate.predict_crops(crops)
    d = np.linalg.norm(a["landmarks"] - b["landmarks"], axis=-1)
    agree = None
    if a["noise_probs"] is not None and b["noise_probs"] is not None:
        agree = float(np.mean(a["noise_probs"].argmax(1) == b["noise_probs"].argmax(1)))
    return {"n_crops": int(len(crops)), "mean_px": round(float(d.mean()), 4),
            "max_px": round(float(d.max()), 4), "noise_class_agreement": agree}


def ship_litert(name):
    """Write the LiteRT copy of shipped model `name` (module docstring) -> (folder, MB,
    parity dict). Raises RuntimeError, writing nothing, when parity fails."""
    import hashlib
    import os
    import shutil
    import keras
    from fadenn_tf import pretrained
    from fadenn_tf.deploy.litert import check_builtin_only, load_tflite
    from fadenn_tf.deploy.routed import convert_routed, write_routed
    from fadenn_tf.deploy.saved_model import load_export_model
    from fadenn_tf.deploy.signatures import part_function
    from fadenn_tf.deploy.tflite import convert_tflite
    from fadenn_tf.inference import load_any, load_litert
    from fadenn_tf.models import routed_parts
    from fadenn_tf.utils.atomic import write_json_atomic
    model, source = load_export_model(name)
    dst = pretrained.litert_dir(name)
    staging = dst.parent / f".{dst.name}.new"    # checked here, then renamed onto dst
    shutil.rmtree(staging, ignore_errors=True)
    try:
        try:
            parts = routed_parts(model)
        except ValueError:   # the FLL alone: one landmarks-only graph
            graph = keras.Model(model.inputs, {"landmarks": model.output["landmarks"]})
            data = convert_tflite(None, "dynamic_int8", batch_size=None, model=graph,
                                  endpoint=part_function)
            staging.mkdir(parents=True)
            run_path = staging / pretrained.LITERT_GRAPH
            check_builtin_only(load_tflite(data), run_path)
            run_path.write_bytes(data)
        else:
            meta, data = convert_routed(model, "dynamic_int8", source, parts, batch_size=None)
            run_path = write_routed(meta, data, staging)
        reference = load_any(name)
        check = compare(reference, load_litert(run_path), parity_crops(reference.size,
                                                                 reference.crop_scale))
        ok = (check["mean_px"] <= PARITY_MEAN_PX and check["max_px"] <= PARITY_MAX_PX
              and (check["noise_class_agreement"] is None
                   or check["noise_class_agreement"] >= PARITY_CLASS_AGREEMENT))
        if not ok:
            raise RuntimeError(f"{name}: the LiteRT int8 copy disagrees with {source}: {check} "
                               f"(limits: mean {PARITY_MEAN_PX} px, max {PARITY_MAX_PX} px, "
                               f"class agreement {PARITY_CLASS_AGREEMENT}); nothing written")
        import tensorflow as tf
        info = {"format": 1, "variant": "dynamic_int8", "batch": "dynamic",
                "source": Path(source).name,
                "source_sha256": hashlib.sha256(Path(source).read_bytes()).hexdigest(),
                "tensorflow": tf.__version__,
                "parity": dict(check, crops="built-in synthetic test faces, clean and each "
                                            "noise type at level 2 on the crop",
                               units="pixels of the model's input crop")}
        write_json_atomic(staging / pretrained.SHIPPED_JSON, info)
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(staging, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    mb = sum(f.stat().st_size for f in dst.iterdir()) / 2 ** 20
    return dst, mb, check


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fll", help="the FLL alone -> pretrained-fll")
    p.add_argument("--fadenn-m", help="FADeNN-M -> pretrained")
    p.add_argument("--config-name", default=None, help="config name recorded in model.json")
    p.add_argument("--litert", action="store_true",
                   help="(re)write the LiteRT int8 copies of every shipped model")
    a = p.parse_args(argv)
    total, shipped = 0.0, []
    for name, source in (("pretrained-fll", a.fll), ("pretrained", a.fadenn_m)):
        if source:
            dst, mb, diff = ship(source, name, a.config_name)
            total += mb
            shipped.append(name)
            print(f"{name}: {dst} ({mb:.1f} MB; float16 weights change the landmarks by at "
                  f"most {diff:.4f} crop px on 32 synthetic test crops)")
    if shipped:
        print(f"package growth from these files: {total:.1f} MB (budget {BUDGET_MB:.0f} MB)")
    from fadenn_tf import pretrained
    lite = 0.0
    for name in (pretrained.available() if a.litert else shipped):
        dst, mb, check = ship_litert(name)
        lite += mb
        print(f"{name}: LiteRT int8 copy {dst} ({mb:.1f} MB); against the Keras model on "
              f"{check['n_crops']} synthetic crops: landmarks differ by {check['mean_px']:.3f} "
              f"crop px on average, {check['max_px']:.3f} at most; noise class agreement "
              f"{check['noise_class_agreement']}")
    if a.litert or shipped:
        print(f"LiteRT copies: {lite:.1f} MB (budget {LITERT_BUDGET_MB:.0f} MB)")
    return 0 if total <= BUDGET_MB and lite <= LITERT_BUDGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
