"""Export a trained model: SavedModel for TF Serving, TFLite variants for LiteRT.

    python -m fadenn_tf.export --model runs/cpu --out exported/fadenn_m \
        --tflite float32,float16,dynamic_int8,int8 --report

SavedModel (TF Serving layout exported/NAME/<version>/, never overwritten; written to a
temporary folder and renamed when complete; <version>/model.json holds the model's format-1
metadata, fadenn_tf.models.io). The Keras model scales its input inside its graph, so the
signatures pass pixels straight through. Signatures:
  "serving_default"      images      float32 [B,S,S,3] RGB 0..255 (S = the IID size)
                         -> landmarks   float32 [B,68,2] 0-based pixel coords in the S x S crop
                            noise_probs float32 [B,5]   (uniform 0.2 for FLL and FADeNN-D)
                            denoised    float32 [B,S,S,3] RGB 0..255 (same range as the input)
  "predict_image_bytes"  image_bytes string [B]  encoded JPEG/PNG (any size, one face each)
                         boxes       float32 [B,4] face box (x0,y0,x1,y1), pixel-EDGE coords
                                     of the original image (a detector's (x,y,w,h) is
                                     (x, y, x+w, y+h))
                         -> landmarks   float32 [B,68,2] 0-based pixel-centre coords in the
                                        ORIGINAL image (NaN where valid is false)
                            noise_probs float32 [B,5] (NaN where valid is false)
                            valid       bool [B]: false for a box that is non-finite
                                        or inverted, or whose part inside the image is
                                        under 8 px wide or high, and for bytes of no
                                        known image format
  Image and box counts that differ are an error naming both sizes; B = 0 gives empty
  outputs. Bytes of no known
  format (not JPEG/PNG/GIF/BMP/WebP) only flag their own row; bytes with a known header but
  corrupt content fail the whole call (TF's decoders raise; a graph cannot catch that).
  The bytes signature crops exactly as fadenn_tf.data.crop: region = 2x the box clipped to
  the image, bilinear resize to S, area pre-shrink when the region is >= 2x the crop (as
  crop_image), and maps landmarks back with invert_points_tf.
TFLite (exported/NAME/tflite-<version>/fadenn_<variant>.tflite): the serving_default
signature only (decoding is not a TFLite builtin), builtin ops only, float32 I/O for every
variant. --tflite-routed (FADeNN-S/M) adds tflite-<version>/routed-<variant>/: the
classifier, experts and landmark tail as separate files, run by
fadenn_tf.load(folder, backend="litert") with only the chosen expert per crop.
See exported/README.md and docs/export.md.
"""
import sys
from pathlib import Path

from fadenn_tf.utils.cli import EXIT_CODES, EXIT_DONE, command
from fadenn_tf.utils.cli_args import positive_int
from fadenn_tf.utils.lock import take_lock


def _parse_variants(text, allowed, flag):
    vs = [v.strip() for v in (text or "").split(",") if v.strip()]
    vs = list(allowed) if "all" in vs else vs
    bad = [v for v in vs if v not in allowed]
    if bad:
        raise ValueError(f"{flag}: unknown variant(s) {bad}; choose from "
                         f"{', '.join(allowed)} or all")
    return vs


def build_parser():
    from fadenn_tf.utils.cli import add_config_arguments, make_parser
    p = make_parser("export", __doc__, version_value=("serving_version", positive_int),
                    epilog=EXIT_CODES)
    p.add_argument("--model", required=True, metavar="PATH",
                   help="pretrained, pretrained-fll (shipped), a training workdir or .keras "
                        "file")
    p.add_argument("--out", required=True, help="export root, e.g. exported/fadenn_m")
    p.add_argument("--serving-version", type=positive_int, default=None, metavar="N",
                   help="TF Serving version folder OUT/N (default: the next free one)")
    p.add_argument("--tflite", default="", help="comma list of float32,float16,"
                                                "dynamic_int8,int8 (or all)")
    p.add_argument("--tflite-routed", default="", metavar="VARIANTS",
                   help="FADeNN-S/M only: comma list of float32,float16,dynamic_int8 (or all) "
                        "written as routed parts (only the chosen expert runs; deploy.routed)")
    p.add_argument("--tflite-batch", type=positive_int, default=None,
                   help="convert TFLite at this fixed batch (e.g. 1: faster batch-1 serving, "
                        "XNNPACK takes the whole graph); default: dynamic batch")
    p.add_argument("--data", default=None, help="dataset folder for representative and test "
                                                "crops (default: the synthetic dataset)")
    p.add_argument("--report", action="store_true", help="write the parity report")
    p.add_argument("--max-images", type=positive_int, default=100, help="test / calibration crops")
    p.add_argument("--normalizer", default="diagonal", choices=("diagonal", "box", "interocular"),
                   help="NME normaliser of the parity report (diagonal)")
    p.add_argument("--repeats", type=positive_int, default=30, help="latency repeats")
    add_config_arguments(p, "config whose export section gives the defaults (default cpu)")
    from fadenn_tf.utils.cli import add_no_progress
    add_no_progress(p)
    return p


@command
def main(argv=None):
    parser = build_parser()
    a = parser.parse_args(argv)
    from fadenn_tf.config import load_config
    from fadenn_tf.utils.cli import defaults_from_config
    defaults_from_config(parser, a, argv, load_config(a.config, sets=a.sets).export,
                         {k: k for k in ("tflite", "max_images", "normalizer", "repeats")})
    from fadenn_tf.deploy.parity import (smooth_check_crops, load_crops, parity_report,
                                         write_report)
    from fadenn_tf.deploy.saved_model import export_saved_model, load_export_model
    from fadenn_tf.deploy.signatures import BYTES_SIGNATURE, SERVING_SIGNATURE, model_size
    from fadenn_tf.deploy.tflite import write_tflite_variants
    from fadenn_tf.errors import FadennError
    from fadenn_tf.utils.atomic import remove_stale_temporaries
    from fadenn_tf.deploy.routed import ROUTED_VARIANTS, export_routed
    from fadenn_tf.deploy.tflite import TFLITE_VARIANTS
    variants = _parse_variants(a.tflite, TFLITE_VARIANTS, "--tflite")
    routed_variants = _parse_variants(a.tflite_routed, ROUTED_VARIANTS, "--tflite-routed")
    from fadenn_tf.models import read_metadata
    try:
        model, src = load_export_model(a.model)  # a bad --model creates no export root
        take_lock(a.out, "export")  # one writer per export root
        for d in [Path(a.out), *Path(a.out).glob("tflite-*")]:
            for stale in remove_stale_temporaries(d):
                print(f"removed {stale} (left by a killed export)", file=sys.stderr)
        size = model_size(model)
        print(f"model {model.name} from {src}: input {size}x{size}")
        from fadenn_tf.utils.progress import progress
        steps = progress(total=1 + bool(variants) + bool(routed_variants)
                         + bool(a.report or variants), desc="export", unit="step",
                         enabled=not a.no_progress)   # SavedModel, TFLite, routed, parity
        meta = read_metadata(src) or {}
        vdir = export_saved_model(model, a.out, a.serving_version, meta.get("variant"),
                                  meta.get("config_name"))
        print(f"SavedModel -> {vdir} (signatures {SERVING_SIGNATURE}, {BYTES_SIGNATURE})")
        steps.update(1)
        tdir = Path(a.out) / f"tflite-{vdir.name}"
        rep = None
        if "int8" in variants:
            rep, _ = load_crops(a.data, size, "train", a.max_images, noisy=True)
        paths = (write_tflite_variants(vdir, tdir, variants, rep, a.tflite_batch, model)
                 if variants else {})
        for v, path in paths.items():
            print(f"TFLite {v} -> {path} ({path.stat().st_size / 1e6:.2f} MB)")
        steps.update(bool(variants))
        # routed parts are always checked on smooth crops; the other TFLite files only when
        # no --report checks them on real ones
        check = (smooth_check_crops(size) if routed_variants or (paths and not a.report)
                 else None)
        for v, (folder, diff) in export_routed(model, tdir, routed_variants, src, check).items():
            print(f"TFLite routed {v} -> {folder} (max landmark diff {diff:.4f} px, random "
                  "smooth inputs)")
        steps.update(bool(routed_variants))
        if a.report:
            crops, ev = load_crops(a.data, size, "test", a.max_images)
            report = parity_report(model, paths, crops, ev, a.normalizer, a.repeats, vdir)
            report.update(model=str(src), saved_model=str(vdir))
            tdir.mkdir(parents=True, exist_ok=True)
            print(write_report(report, tdir, f"Parity of {model.name} ({src})"))
            print(f"report -> {tdir}/parity.json, parity.md")
        elif paths:
            report = parity_report(model, paths, check, None, repeats=3)
            for r in report["rows"][1:]:
                print(f"{r['variant']}: max landmark diff {r['max_landmark_diff_px']:.4f} px "
                      "(random smooth inputs)")
        steps.update(bool(a.report or paths))
        steps.close()
    except RuntimeError as exc:  # a TFLite conversion the model does not allow
        raise FadennError(str(exc)) from exc
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
