"""What `export` runs: the SavedModel, the TFLite variants, the routed parts and the parity
check of one trained model (the command and its outputs: fadenn_tf.cli.export)."""
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from fadenn_tf.data.crop import CROP_SCALE, checked_crop_scale
from fadenn_tf.deploy.parity import (load_crops, parity_report, smooth_check_crops,
                                     write_report)
from fadenn_tf.deploy.routed import ROUTED_VARIANTS, export_routed
from fadenn_tf.deploy.saved_model import export_saved_model, load_export_model
from fadenn_tf.deploy.signatures import BYTES_SIGNATURE, SERVING_SIGNATURE, model_size
from fadenn_tf.deploy.tflite import TFLITE_VARIANTS, write_tflite_variants
from fadenn_tf.errors import FadennError
from fadenn_tf.models import read_metadata
from fadenn_tf.models.io import metadata_path
from fadenn_tf.utils.atomic import remove_stale_temporaries
from fadenn_tf.utils.lock import take_lock
from fadenn_tf.utils.progress import progress as progress_bar


@dataclass
class ExportOptions:
    """One export. model: a shipped name, training workdir or .keras file; out: the export
    root (out/<version>/ is the SavedModel, out/tflite-<version>/ the TFLite files)."""
    model: str
    out: str
    serving_version: Optional[int] = None   # None: the next free version folder
    tflite: str = ""                        # comma list of TFLITE_VARIANTS, or "all"
    tflite_routed: str = ""                 # comma list of ROUTED_VARIANTS, or "all"
    tflite_batch: Optional[int] = None      # fixed TFLite batch; None: dynamic
    data: Optional[str] = None              # crops for int8 calibration and the report
    report: bool = False                    # write parity.json / parity.md
    max_images: int = 100                   # test / calibration crops
    normalizer: str = "diagonal"            # NME normaliser of the parity report
    repeats: int = 30                       # latency repeats of the parity report
    progress: bool = True                   # show the progress bar

    @classmethod
    def of(cls, args):
        """The options of a parsed `export` command line (an argparse Namespace)."""
        return cls(**{k: getattr(args, k) for k in cls.__dataclass_fields__ if k != "progress"},
                   progress=not args.no_progress)


def parse_variants(text, allowed, flag):
    """The comma list `text` ("all": every one of `allowed`); ValueError naming `flag` and
    the unknown names."""
    vs = [v.strip() for v in (text or "").split(",") if v.strip()]
    vs = list(allowed) if "all" in vs else vs
    bad = [v for v in vs if v not in allowed]
    if bad:
        raise ValueError(f"{flag}: unknown variant(s) {bad}; choose from "
                         f"{', '.join(allowed)} or all")
    return vs


def run_export(opts):
    """Export `opts.model` as `opts` (ExportOptions) says, printing each file written.
    Returns the SavedModel's version folder. Raises ValueError for an unknown variant (before
    anything is loaded), DataError for a bad model, FadennError when a TFLite conversion
    fails, WriteError when an output cannot be written."""
    variants = parse_variants(opts.tflite, TFLITE_VARIANTS, "--tflite")
    routed_variants = parse_variants(opts.tflite_routed, ROUTED_VARIANTS, "--tflite-routed")
    try:
        return _export(opts, variants, routed_variants)
    except RuntimeError as exc:  # a TFLite conversion the model does not allow
        raise FadennError(str(exc)) from exc


def _export(opts, variants, routed_variants):
    model, src = load_export_model(opts.model)  # a bad --model creates no export root
    meta = read_metadata(src) or {}
    scale = checked_crop_scale(meta.get("crop_scale", CROP_SCALE), metadata_path(src))
    take_lock(opts.out, "export")  # one writer per export root
    for d in [Path(opts.out), *Path(opts.out).glob("tflite-*")]:
        for stale in remove_stale_temporaries(d):
            print(f"removed {stale} (left by a killed export)", file=sys.stderr)
    size = model_size(model)
    print(f"model {model.name} from {src}: input {size}x{size}, crop {scale:g} x the face box")
    steps = progress_bar(total=1 + bool(variants) + bool(routed_variants)
                         + bool(opts.report or variants), desc="export", unit="step",
                         enabled=opts.progress)   # SavedModel, TFLite, routed, parity
    vdir = export_saved_model(model, opts.out, opts.serving_version, meta.get("variant"),
                              meta.get("config_name"), scale)
    exported = read_metadata(vdir)   # its model.json: also beside each TFLite copy
    print(f"SavedModel -> {vdir} (signatures {SERVING_SIGNATURE}, {BYTES_SIGNATURE})")
    steps.update(1)
    tdir = Path(opts.out) / f"tflite-{vdir.name}"
    rep = None
    if "int8" in variants:
        rep, _ = load_crops(opts.data, size, "train", opts.max_images, noisy=True,
                            scale=scale)
    paths = (write_tflite_variants(vdir, tdir, variants, rep, opts.tflite_batch, model,
                                   exported) if variants else {})
    for v, path in paths.items():
        print(f"TFLite {v} -> {path} ({path.stat().st_size / 1e6:.2f} MB; metadata "
              f"{path.with_suffix('.json').name})")
    steps.update(bool(variants))
    # routed parts are always checked on smooth crops; the other TFLite files only when no
    # report checks them on real ones
    check = (smooth_check_crops(size) if routed_variants or (paths and not opts.report)
             else None)
    for v, (folder, diff) in export_routed(model, tdir, routed_variants, src, check,
                                           exported).items():
        print(f"TFLite routed {v} -> {folder} (max landmark diff {diff:.4f} px, random "
              "smooth inputs)")
    steps.update(bool(routed_variants))
    if opts.report:
        crops, ev = load_crops(opts.data, size, "test", opts.max_images, scale=scale)
        report = parity_report(model, paths, crops, ev, opts.normalizer, opts.repeats, vdir)
        report.update(model=str(src), saved_model=str(vdir))
        tdir.mkdir(parents=True, exist_ok=True)
        print(write_report(report, tdir, f"Parity of {model.name} ({src})"))
        print(f"report -> {tdir}/parity.json, parity.md")
    elif paths:
        report = parity_report(model, paths, check, None, repeats=3)
        for r in report["rows"][1:]:
            print(f"{r['variant']}: max landmark diff {r['max_landmark_diff_px']:.4f} px "
                  "(random smooth inputs)")
    steps.update(bool(opts.report or paths))
    steps.close()
    return vdir
