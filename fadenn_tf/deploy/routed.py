"""FADeNN-S/M as routed TFLite parts: the noise classifier, the 4 experts and the landmark
tail in separate files, so that a runtime runs only the expert the classifier picks
(models.routed_parts splits the model; inference.routed.RoutedLiteRTModel runs the parts).
One crop then costs classify + one expert (none for class 0) + landmarks, instead of the
single graph's classify + all 4 experts + landmarks.

Folder layout (convert_routed, then write_routed):
  routed.json        {"format": 1, "kind": "fadenn-routed", "variant": "float32" |
                      "float16" | "dynamic_int8", "input_size": S, "batch_size": 1 or
                      null (dynamic), "parts": {part name: file name}, "source": the
                      model file's name}
  classify.tflite, expert_1.tflite .. expert_4.tflite, landmarks.tflite
  model.json         (export) the model's metadata (models.io), from which a LiteRT load
                     takes its crop: crop_scale and input_size
Every part has one signature, serving_default, with input "images" float32 [B,S,S,3] RGB
0..255 (B = 1, or dynamic) and the outputs listed in models.routed_parts. Builtin ops only.
Dynamic-batch parts run several crops per invoke (RoutedRunner.route_batch).
"""
import json
from pathlib import Path

import numpy as np

from fadenn_tf.deploy.litert import TFLiteRunner, check_builtin_only, load_tflite
from fadenn_tf.deploy.signatures import part_function
from fadenn_tf.deploy.tflite import convert_tflite
from fadenn_tf.errors import DataError
from fadenn_tf.utils.atomic import atomic_path

_OUTPUTS = {"classify": ("noise_probs", "noise_class"), "landmarks": ("landmarks",)}
ROUTED_JSON = "routed.json"
MODEL_JSON = "model.json"    # the model's metadata in a routed folder (inference.litert_load)
ROUTED_FORMAT = 1
ROUTED_VARIANTS = ("float32", "float16", "dynamic_int8")  # full int8 needs per-part calibration


class RoutedRunner:
    """Routed parts driven through deploy.litert.TFLiteRunner. interpreters: {part name:
    LiteRT interpreter}: "classify", "expert_1" .. "expert_<classes - 1>" and "landmarks"
    (models.routed_parts). size: the crop side S. route(crop) runs one crop;
    route_batch(crops) runs several (one invoke per part when the parts have a dynamic
    batch; `dynamic` says whether they do). Raises DataError naming `path` when a part is
    missing or has the wrong inputs or outputs."""

    def __init__(self, interpreters, path="<tflite bytes>"):
        for name in ("classify", "landmarks"):
            if name not in interpreters:
                raise DataError(path, f"routed model lacks the part {name!r} "
                                      f"(has {sorted(interpreters)})")
        classify = TFLiteRunner(interpreters["classify"], f"{path} (classify)")
        if "noise_probs" not in classify.outputs:
            raise DataError(path, "routed part 'classify' has no noise_probs output")
        n_classes = classify.output_shape("noise_probs")[-1]
        names = ["classify"] + [f"expert_{k}" for k in range(1, n_classes)] + ["landmarks"]
        missing = [n for n in names if n not in interpreters]
        if missing:
            raise DataError(path, f"routed model lacks the parts {missing}")
        self.runners = {n: classify if n == "classify" else
                        TFLiteRunner(interpreters[n], f"{path} ({n})") for n in names}
        self.size = classify.input_shape[1]
        self.dynamic = all(r.fixed_batch is None for r in self.runners.values())
        for name, run in self.runners.items():
            want = _OUTPUTS.get(name, ("denoised",))
            if run.input_shape[1:] != (self.size, self.size, 3) or \
                    not set(want) <= set(run.outputs):
                raise DataError(path, f"routed part {name!r} takes {run.input_shape} and gives "
                                      f"{sorted(run.outputs)}; expected [1,{self.size},"
                                      f"{self.size},3] and {list(want)}")

    def route(self, crop):
        """One crop [1,S,S,3] float32 -> (noise class, noise_probs [1,5], denoised [1,S,S,3],
        landmarks [1,68,2])."""
        c = self.runners["classify"](crop)
        k = int(np.asarray(c["noise_class"]).reshape(-1)[0])
        den = crop if k == 0 else self.runners[f"expert_{k}"](crop)["denoised"]
        return k, c["noise_probs"], den, self.runners["landmarks"](den)["landmarks"]

    def route_batch(self, crops):
        """Crops [N,S,S,3] float32 -> (noise classes [N] int, noise_probs [N,5], denoised
        [N,S,S,3], landmarks [N,68,2]). Dynamic-batch parts: one classify invoke, one invoke
        per expert that some crop needs, one landmarks invoke; fixed batch-1 parts: route()
        per crop."""
        if not self.dynamic or len(crops) == 1:
            rows = [self.route(crops[i:i + 1]) for i in range(len(crops))]
            return (np.array([r[0] for r in rows], np.int64),
                    *(np.concatenate([r[j] for r in rows]) for j in (1, 2, 3)))
        c = self.runners["classify"](crops)
        k = np.asarray(c["noise_class"]).reshape(-1).astype(np.int64)
        den = crops.copy()
        for cls in np.unique(k[k > 0]):
            rows = np.flatnonzero(k == cls)
            den[rows] = self.runners[f"expert_{cls}"](
                np.ascontiguousarray(crops[rows]))["denoised"]
        return k, c["noise_probs"], den, self.runners["landmarks"](den)["landmarks"]


def convert_parts(parts, variant="float32", batch_size=1):
    """{part name: Keras part (models.routed_parts)} -> {part name: TFLite bytes}, each
    converted at batch_size: 1 (XNNPACK then takes the whole graph) or None (a dynamic
    batch: several crops per invoke, about as fast per crop at batch 1). Raises ValueError
    for a variant outside ROUTED_VARIANTS, RuntimeError when a part needs non-builtin ops."""
    if variant not in ROUTED_VARIANTS:
        raise ValueError(f"routed TFLite variant must be one of {', '.join(ROUTED_VARIANTS)}, "
                         f"got {variant!r}")
    return {name: convert_tflite(None, variant, batch_size=batch_size, model=part,
                                 endpoint=part_function)
            for name, part in parts.items()}


def convert_routed(model, variant="float32", source=None, parts=None, batch_size=1):
    """(routed.json metadata, {part name: TFLite bytes}) of a FADeNN-S/M (Keras, 0..255
    pixels; source: the model file it came from, recorded by name; parts: its
    models.routed_parts if already built; batch_size: 1 or None, see convert_parts).
    Raises ValueError for a model that is not S/M (models.routed_parts) or an unknown
    variant."""
    from fadenn_tf.models import routed_parts  # lazy: TensorFlow (LiteRT path)
    data = convert_parts(parts if parts is not None else routed_parts(model), variant,
                         batch_size)
    meta = {"format": ROUTED_FORMAT, "kind": "fadenn-routed", "variant": variant,
            "input_size": int(model.inputs[0].shape[1]), "batch_size": batch_size,
            "parts": {name: f"{name}.tflite" for name in data},
            "source": Path(source).name if source else model.name}
    return meta, data


def write_routed(meta, data, out_dir, model_meta=None):
    """Write converted parts (convert_routed's output) to the folder `out_dir` (layout
    above) atomically, each checked to load in LiteRT with builtin ops only, and
    `model_meta` (the model's metadata dict, None: none) as model.json. Raises
    FileExistsError if out_dir exists. Returns out_dir as a Path."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir}: already exists; refusing to overwrite it")
    with atomic_path(out_dir, is_dir=True) as tmp:
        for name, blob in data.items():
            check_builtin_only(load_tflite(blob, 1), f"{out_dir}/{meta['parts'][name]}")
            (Path(tmp) / meta["parts"][name]).write_bytes(blob)
        (Path(tmp) / ROUTED_JSON).write_text(json.dumps(meta, indent=2) + "\n")
        if model_meta is not None:
            (Path(tmp) / MODEL_JSON).write_text(json.dumps(model_meta, indent=2) + "\n")
    return out_dir


def is_routed_dir(path):
    """True when `path` is a folder written by write_routed (it holds routed.json)."""
    return (Path(path) / ROUTED_JSON).is_file()


def read_routed(path, num_threads=None):
    """(metadata dict, {part name: LiteRT interpreter}) of a routed folder. Raises DataError
    naming the file when routed.json is unreadable or of another format, or a part file
    is missing, not TFLite, or uses non-builtin ops."""
    path = Path(path)
    meta_file = path / ROUTED_JSON
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(meta_file, f"unreadable routed model description ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != ROUTED_FORMAT \
            or not isinstance(meta.get("parts"), dict):
        raise DataError(meta_file, f"not a format-{ROUTED_FORMAT} routed model description "
                                   "(expected a 'format' and a 'parts' mapping)")
    interpreters = {}
    for name, file in meta["parts"].items():
        interpreters[name] = load_tflite(path / file, num_threads)
        check_builtin_only(interpreters[name], path / file)
    return meta, interpreters


def export_routed(model, tflite_dir, variants, source=None, check_inputs=None,
                  model_meta=None):
    """Write one routed folder per variant, tflite_dir/routed-<variant>/ (with model_meta,
    the model's metadata, as its model.json), and check each against the Keras model on
    `check_inputs` [N,S,S,3] 0..255 (None: no check).
    Returns {variant: (folder, max landmark difference in crop pixels or None)}."""
    out = {}
    for v in variants:
        folder = write_routed(*convert_routed(model, v, source), Path(tflite_dir) / f"routed-{v}",
                              model_meta)
        diff = None
        if check_inputs is not None:
            runner = RoutedRunner(read_routed(folder)[1], folder)
            x = np.asarray(check_inputs, np.float32)
            got = np.concatenate([runner.route(x[i:i + 1])[3] for i in range(len(x))])
            diff = float(np.abs(got - np.asarray(model(x)["landmarks"])).max())
        out[v] = (folder, diff)
    return out
