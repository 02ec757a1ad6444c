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
                            valid       bool [B]: false for a box that is non-finite,
                                        inverted, zero-area or entirely outside its image,
                                        and for bytes of no known image format
  Image and box counts that differ are an error naming both sizes. Bytes of no known
  format (not JPEG/PNG/GIF/BMP/WebP) only flag their own row; bytes with a known header but
  corrupt content fail the whole call (TF's decoders raise; a graph cannot catch that).
  The bytes signature crops exactly as fadenn_tf.data.crop: region = 2x the box clipped to
  the image, bilinear resize to S, area pre-shrink when the region is >= 2x the crop (as
  crop_image), and maps landmarks back with invert_points_tf.
TFLite (exported/NAME/tflite-<version>/fadenn_<variant>.tflite): the serving_default
signature only (decoding is not a TFLite builtin), builtin ops only, float32 I/O for every
variant. See exported/README.md and docs/export.md.
"""
import base64
import sys
from pathlib import Path

import numpy as np
from fadenn_tf.utils.lazy import lazy_import
tf = lazy_import("tensorflow")        # imported at first use: fast --help

from fadenn_tf.data.crop import (CROP_SCALE, crop_and_resize_tf, crop_regions_tf,
                                  invert_points_tf)
from fadenn_tf.errors import DataError
from fadenn_tf.utils.atomic import (atomic_path, remove_stale_temporaries, write_json_atomic,
                                    write_text_atomic)
from fadenn_tf.utils.cli_args import positive_int
from fadenn_tf.utils.lock import LockedError, one_writer, take_lock

SERVING_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "predict_image_bytes"
TFLITE_VARIANTS = ("float32", "float16", "dynamic_int8", "int8")


# ----------------------------------------------------------------------------- model loading

def resolve_model_file(path):
    """--model argument (a shipped name, a .keras file or a training workdir: see
    inference.resolve_model_path) -> a .keras file. Raises DataError."""
    from fadenn_tf.inference import resolve_model_path
    f = resolve_model_path(path)
    if f.suffix != ".keras":
        raise DataError(f, "expected a .keras model file or a training workdir (an exported "
                           "SavedModel is already an export)")
    return f


def _model_cfg_for_fll(fll, model_file):
    """ModelConfig for wrapping a stand-alone FLL: the stage's config.yaml when present,
    else IID size = FLL size (no resize in the wrapper)."""
    from fadenn_tf.config import FLLConfig, IIDConfig, ModelConfig, load_config
    cfg_file = Path(model_file).parent / "config.yaml" if model_file else None
    s = int(fll.inputs[0].shape[1])
    n = int(fll.outputs[0].shape[-1]) // 2
    if cfg_file is not None and cfg_file.is_file():
        cfg = load_config(cfg_file).model
        if cfg.fll.input_size == s and cfg.fll.num_points == n:
            return cfg
    return ModelConfig(iid=IIDConfig(input_size=s), fll=FLLConfig(input_size=s, num_points=n))


def as_end_to_end(model, model_file=None):
    """An end-to-end FADeNN-interface Keras model (dict outputs landmarks/noise_probs/
    denoised); a stand-alone FLL ([B,s,s,3] -> [B,2P]) is wrapped with build_fll_baseline."""
    from fadenn_tf.models import build_fll_baseline
    if isinstance(model.output, dict) and "landmarks" in model.output:
        return model
    if len(model.outputs) == 1 and len(model.outputs[0].shape) == 2 \
            and model.outputs[0].shape[-1] % 2 == 0:
        return build_fll_baseline(_model_cfg_for_fll(model, model_file), model)
    raise DataError(model_file or model.name, "not a landmark model (expected FADeNN outputs "
                                              "or an FLL's [B, 2P] coordinates)")


def load_export_model(path):
    """(end-to-end Keras model taking 0..255 pixels, the .keras file it came from) for a
    --model argument (a file saved before model format 1 is wrapped, fadenn_tf.models.io)."""
    from fadenn_tf.models import load_model
    f = resolve_model_file(path)
    return as_end_to_end(load_model(f), f), f


def model_size(model):
    """The side S of the model's square input [B,S,S,3]."""
    return int(model.inputs[0].shape[1])


# ----------------------------------------------------------------------------- signatures

def serving_function(model, batch_size=None):
    """tf.function images [B,S,S,3] float32 0..255 -> {landmarks, noise_probs, denoised 0..255}.
    batch_size: None (dynamic B) or a fixed B (the TFLite fixed-batch conversion)."""
    s = model_size(model)

    @tf.function(input_signature=[tf.TensorSpec([batch_size, s, s, 3], tf.float32,
                                                name="images")])
    def serve(images):
        out = model(images, training=False)
        return {"landmarks": out["landmarks"],
                "noise_probs": _with_class_axis(out["noise_probs"], batch_size),
                "denoised": out["denoised"]}
    return serve


def decode_rgb(image_bytes):
    """Encoded JPEG/PNG/BMP/GIF (first frame) string scalar -> [H,W,3] uint8 RGB.

    JPEGs decode with the accurate integer IDCT, as OpenCV (the project's decoder,
    fadenn_tf.data.images) does; TF's default (INTEGER_FAST) differs by up to 5 grey levels."""
    return tf.cond(
        tf.io.is_jpeg(image_bytes),
        lambda: tf.io.decode_jpeg(image_bytes, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.ensure_shape(tf.io.decode_image(image_bytes, channels=3, dtype=tf.uint8,
                                                   expand_animations=False), [None, None, 3]))


def crop_encoded_tf(image_bytes, box, size, scale=CROP_SCALE):
    """Decode one JPEG/PNG (string scalar) and crop the face `box` [4] (edge coords) to
    [size,size,3] float32 0..255. Returns (crop, region [4] in the original image).

    Same mapping as fadenn_tf.data.crop.crop_image: region = crop_regions_tf(box) (2x, clipped);
    when the region is >= 2x the crop along an axis, the window under the region (2k px
    margin) is first shrunk by about k = floor(region / size) with area averaging, as
    crop_image does with cv2.INTER_AREA, then sampled bilinearly with crop_and_resize_tf."""
    return crop_decoded_tf(tf.cast(decode_rgb(image_bytes), tf.float32), box, size, scale)


def crop_decoded_tf(img, box, size, scale=CROP_SCALE):
    """crop_encoded_tf on a decoded [H,W,3] float32 image."""
    hw = tf.shape(img)[:2]
    region = crop_regions_tf(box[None], hw, scale=scale)
    rw = region[0, 2] - region[0, 0]
    rh = region[0, 3] - region[0, 1]
    kx = tf.maximum(tf.floor(rw / size), 1.0)
    ky = tf.maximum(tf.floor(rh / size), 1.0)

    def shrunk():  # crop_image's window + INTER_AREA step, in TF
        h, w = tf.cast(hw[0], tf.float32), tf.cast(hw[1], tf.float32)
        wx0 = tf.maximum(0.0, tf.floor(region[0, 0]) - 2.0 * kx)
        wx1 = tf.minimum(w, tf.math.ceil(region[0, 2]) + 2.0 * kx)
        wy0 = tf.maximum(0.0, tf.floor(region[0, 1]) - 2.0 * ky)
        wy1 = tf.minimum(h, tf.math.ceil(region[0, 3]) + 2.0 * ky)
        win = img[tf.cast(wy0, tf.int32):tf.cast(wy1, tf.int32),
                  tf.cast(wx0, tf.int32):tf.cast(wx1, tf.int32)]
        dw = tf.maximum(tf.round((wx1 - wx0) / kx), 1.0)
        dh = tf.maximum(tf.round((wy1 - wy0) / ky), 1.0)
        small = tf.image.resize(win[None], tf.cast(tf.stack([dh, dw]), tf.int32), method="area")
        fx, fy = (wx1 - wx0) / dw, (wy1 - wy0) / dh
        reg = (region - tf.stack([wx0, wy0, wx0, wy0])) / tf.stack([fx, fy, fx, fy])
        return crop_and_resize_tf(small, reg, size)[0]

    def direct():
        return crop_and_resize_tf(img[None], region, size)[0]

    crop = tf.cond(tf.logical_or(kx >= 2.0, ky >= 2.0), shrunk, direct)
    return tf.ensure_shape(crop, [size, size, 3]), region[0]


def known_image_format(image_bytes):
    """bool scalar: the string starts like a JPEG, PNG, GIF, BMP or WebP file."""
    head = tf.strings.join([tf.strings.substr(image_bytes, 0, 12), b"\0" * 12])  # short: padded
    head4 = tf.strings.substr(head, 0, 4)
    return tf.reduce_any(tf.stack([
        tf.io.is_jpeg(image_bytes), tf.equal(head4, b"\x89PNG"), tf.equal(head4, b"GIF8"),
        tf.equal(tf.strings.substr(head, 0, 2), b"BM"),
        tf.logical_and(tf.equal(head4, b"RIFF"),
                       tf.equal(tf.strings.substr(head, 8, 4), b"WEBP"))]))


def checked_crop_tf(image_bytes, box, size, scale=CROP_SCALE):
    """crop_encoded_tf that never returns a plausible crop for a bad input: (crop, region,
    valid). valid is false for bytes of no known format and for a box that is non-finite,
    inverted, zero-area or entirely outside the image; such rows are cropped from a
    placeholder (a 1x1 image or the whole image) so the batch goes on."""
    readable = known_image_format(image_bytes)
    placeholder = tf.io.encode_png(tf.zeros([1, 1, 3], tf.uint8))
    img = tf.cast(decode_rgb(tf.where(readable, image_bytes, placeholder)), tf.float32)
    h = tf.cast(tf.shape(img)[0], tf.float32)
    w = tf.cast(tf.shape(img)[1], tf.float32)
    x0, y0, x1, y1 = tf.unstack(box)
    valid = tf.reduce_all(tf.stack([
        readable, tf.reduce_all(tf.math.is_finite(box)), x1 > x0, y1 > y0,
        x1 > 0.0, y1 > 0.0, x0 < w, y0 < h]))
    safe_box = tf.where(valid, box, tf.stack([0.0, 0.0, w, h]))
    crop, region = crop_decoded_tf(img, safe_box, size, scale)
    return crop, region, valid


def bytes_function(model, scale=CROP_SCALE):
    """tf.function (image_bytes [B] string, boxes [B,4]) -> landmarks in original image
    pixels [B,68,2], noise_probs [B,5] and valid [B] (see checked_crop_tf; invalid rows
    have NaN landmarks and noise_probs). Differing batch sizes raise InvalidArgumentError
    naming both."""
    s = model_size(model)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes"),
                                  tf.TensorSpec([None, 4], tf.float32, name="boxes")])
    def predict_image_bytes(image_bytes, boxes):
        n_img, n_box = tf.shape(image_bytes)[0], tf.shape(boxes)[0]
        check = tf.debugging.Assert(tf.equal(n_img, n_box), [
            "predict_image_bytes: image_bytes has", n_img, "images but boxes has", n_box,
            "rows (one box per image)"])
        with tf.control_dependencies([check]):
            image_bytes = tf.identity(image_bytes)
        crops, regions, valid = tf.map_fn(
            lambda a: checked_crop_tf(a[0], a[1], s, scale), (image_bytes, boxes),
            fn_output_signature=(tf.TensorSpec([s, s, 3], tf.float32),
                                 tf.TensorSpec([4], tf.float32), tf.TensorSpec([], tf.bool)))
        out = model(crops, training=False)
        nan = tf.constant(float("nan"), tf.float32)
        landmarks = invert_points_tf(out["landmarks"], regions, s)
        probs = _with_class_axis(out["noise_probs"], None)
        return {"landmarks": tf.where(valid[:, None, None], landmarks, nan),
                "noise_probs": tf.where(valid[:, None], probs, nan),
                "valid": valid}
    return predict_image_bytes


def _with_class_axis(noise_probs, batch_size):
    """noise_probs with its static shape [B, 5] in the signature (an FLL wrapped as the
    baseline computes its uniform probabilities with a dynamic shape, shown as (-1, -1)).
    Models built by this version already give [B, 5] (no op is added then); for older
    files a reshape (a TFLite builtin, unlike tf.ensure_shape) pins it."""
    if noise_probs.shape.rank == 2 and noise_probs.shape[-1] == 5:
        return noise_probs
    return tf.reshape(noise_probs, [-1 if batch_size is None else batch_size, 5])


def build_archive(model):
    """keras.export.ExportArchive tracking `model` with both endpoints."""
    import keras
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_SIGNATURE, serving_function(model))
    archive.add_endpoint(BYTES_SIGNATURE, bytes_function(model))
    return archive


def next_version(root):
    """1 + the largest numeric sub-folder of `root` (1 if none)."""
    root = Path(root)
    nums = [int(d.name) for d in root.iterdir() if d.is_dir() and d.name.isdigit()] \
        if root.is_dir() else []
    return max(nums, default=0) + 1


def export_saved_model(model, out_root, version=None, variant=None, config_name=None):
    """Write the SavedModel of `model` (an end-to-end model taking 0..255 pixels) and its
    model.json (variant / config_name: see fadenn_tf.models.io.describe) to
    out_root/<version>/ (default: next free version) atomically. Raises FileExistsError if
    that version exists. Returns the version folder."""
    from fadenn_tf.models import describe
    version = next_version(out_root) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be >= 1, got {version}")
    final = Path(out_root) / str(version)
    if final.exists():
        raise FileExistsError(f"{final}: version {version} already exists; refusing to "
                              "overwrite it (leave --version out to use the next free one)")
    meta = describe(model, variant, config_name)
    archive = build_archive(model)
    with atomic_path(final, is_dir=True) as tmp:
        archive.write_out(str(tmp), verbose=False)
        write_json_atomic(Path(tmp) / "model.json", meta)
    return final


# ----------------------------------------------------------------------------- REST

def rest_request_body(images=None, signature=SERVING_SIGNATURE, boxes=None, image_bytes=None):
    """JSON-able body of a TF Serving REST predict request (row "instances" format).

    serving_default: images [B,S,S,3] 0..255 -> {"signature_name", "instances":
    [{"images": [[[r,g,b],...]]}, ...]}. predict_image_bytes: image_bytes (list of encoded
    JPEG/PNG bytes) and boxes [B,4] -> instances [{"image_bytes": {"b64": ...}, "boxes":
    [x0,y0,x1,y1]}, ...] (TF Serving decodes {"b64": ...} into the string tensor)."""
    if signature == SERVING_SIGNATURE:
        arr = np.asarray(images, dtype=np.float32)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"images must be [B,S,S,3], got {arr.shape}")
        inst = [{"images": a.tolist()} for a in arr]
    elif signature == BYTES_SIGNATURE:
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if image_bytes is None or len(image_bytes) != len(b):
            raise ValueError("predict_image_bytes needs one encoded image per box")
        inst = [{"image_bytes": {"b64": base64.b64encode(bytes(x)).decode("ascii")},
                 "boxes": [float(v) for v in bb]} for x, bb in zip(image_bytes, b)]
    else:
        raise ValueError(f"unknown signature {signature!r}")
    return {"signature_name": signature, "instances": inst}


def rest_body_to_inputs(body):
    """What TF Serving feeds the signature for a row-format body: {name: batched array}
    ({"b64": s} values decoded to bytes). Returns (signature_name, inputs)."""
    rows = body["instances"]
    names = rows[0].keys()

    def value(v):
        return base64.b64decode(v["b64"]) if isinstance(v, dict) and "b64" in v else v
    inputs = {}
    for k in names:
        vals = [value(r[k]) for r in rows]
        inputs[k] = (np.array(vals, dtype=object) if isinstance(vals[0], bytes)
                     else np.asarray(vals, dtype=np.float32))
    return body.get("signature_name", SERVING_SIGNATURE), inputs


# ----------------------------------------------------------------------------- TFLite

def fixed_batch_saved_model(model, out_dir, batch_size=1):
    """Write a SavedModel with only serving_default at a FIXED batch [batch_size,S,S,3]
    (keras ExportArchive, so variables stay resource variables the converter can freeze;
    a tf.Module SavedModel converts to a broken TFLite, see the field notes). Returns out_dir."""
    import keras
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_SIGNATURE, serving_function(model, int(batch_size)))
    archive.write_out(str(out_dir), verbose=False)
    return Path(out_dir)


def convert_tflite(saved_model_dir, variant, representative=None, batch_size=None,
                   model=None):
    """Convert the SavedModel's serving_default to TFLite bytes (builtin ops only).

    variant: float32 | float16 (fp16 weights) | dynamic_int8 (int8 weights, float
    activations) | int8 (full integer: weights and activations int8, calibrated on
    `representative` [N,S,S,3] 0..255; float32 input/output tensors).
    batch_size: None keeps the SavedModel's dynamic batch; an int converts `model` (the Keras
    model the SavedModel came from, required then) at that fixed batch: every shape folds
    to a constant, so no SHAPE/STRIDED_SLICE/PACK chains split the XNNPACK delegate; the
    TFLite then runs only at that batch (its reshapes are baked in). Raises RuntimeError naming the
    variant when the model needs non-builtin (Flex) ops."""
    if variant not in TFLITE_VARIANTS:
        raise ValueError(f"unknown TFLite variant {variant!r}; choose {', '.join(TFLITE_VARIANTS)}")
    if batch_size is not None:
        import tempfile
        if model is None:
            raise ValueError("a fixed-batch TFLite conversion needs the Keras model")
        with tempfile.TemporaryDirectory() as tmp:
            fixed = fixed_batch_saved_model(model, Path(tmp) / "fixed", batch_size)
            return convert_tflite(fixed, variant, representative)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir),
                                                    signature_keys=[SERVING_SIGNATURE])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("full int8 needs representative images")
        rep = np.asarray(representative, dtype=np.float32)

        def gen():
            for x in rep:
                yield {"images": x[None]}
        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.float32
        conv.inference_output_type = tf.float32
    try:
        return conv.convert()
    except Exception as exc:  # converter errors are ConverterError/RuntimeError/ValueError
        raise RuntimeError(f"TFLite {variant} conversion failed with builtin ops only "
                           f"(no Flex): {str(exc)[:2000]}") from exc


def write_tflite_variants(saved_model_dir, out_dir, variants, representative=None,
                          batch_size=None, model=None):
    """Convert and write each variant to out_dir/fadenn_<variant>.tflite (atomic), checking
    that it loads in LiteRT with builtin ops only (batch_size/model: see convert_tflite).
    Returns {variant: Path}."""
    from fadenn_tf.tflite_runner import check_builtin_only, load_tflite
    out_dir = Path(out_dir)
    paths = {}
    for v in variants:
        data = convert_tflite(saved_model_dir, v, representative, batch_size, model)
        check_builtin_only(load_tflite(data), f"{out_dir}/fadenn_{v}.tflite")
        path = out_dir / f"fadenn_{v}.tflite"
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(data)
        paths[v] = path
    return paths


# ----------------------------------------------------------------------------- data

def _noisy_half(crops, seed=0):
    """Degrade every other crop with a random paper noise condition (0..255 float32)."""
    from fadenn_tf.noise import apply_noise
    n = len(crops)
    rng = np.random.default_rng(seed)
    t = np.where(np.arange(n) % 2 == 1, rng.integers(1, 5, n), 0).astype(np.int32)
    lv = rng.integers(1, 4, n).astype(np.int32)
    x = apply_noise(tf.constant(crops / 255.0, tf.float32), t, lv, tf.constant([seed, 1]))
    return np.clip(x.numpy() * 255.0, 0, 255).astype(np.float32)


def load_crops(data, size, split, max_images, noisy=False):
    """Evaluation crops of a dataset split: (crops [N,S,S,3] float32 0..255, EvalData).
    data: a dataset folder or None for the synthetic default (fadenn_tf.data.cache)."""
    from fadenn_tf.data.cache import resolve_data
    from fadenn_tf.data.datasets import open_dataset
    from fadenn_tf.data.pipeline import load_eval_data
    root = resolve_data(data)
    samples, _ = open_dataset(root, split=split)
    if max_images:
        step = max(1, len(samples) // max_images)
        samples = samples[::step][:max_images]
    ev = load_eval_data(samples, size)
    crops = ev.images.astype(np.float32)
    return (_noisy_half(crops) if noisy else crops), ev


# ----------------------------------------------------------------------------- parity

def _image_nme(pred_crop, ev, normalizer):
    from fadenn_tf.data.crop import CropTransform
    from fadenn_tf.metrics import nme
    pred = np.stack([CropTransform(r, ev.size).invert(p) for r, p in zip(ev.regions, pred_crop)])
    gt = np.stack([s.landmarks for s in ev.samples])
    return float(np.nanmean(nme(pred, gt, normalizer)))


def parity_report(model, tflite_paths, crops, ev=None, normalizer="diagonal", repeats=20,
                  saved_model_dir=None):
    """Compare TFLite variants (and the reloaded SavedModel) with the Keras model.

    crops [N,S,S,3] 0..255; ev: the EvalData they came from (for the NME on original-image
    coordinates; None skips the NME). Returns a dict with one row per variant:
    max_landmark_diff_px (crop pixels, max over images and points), mean_landmark_diff_px,
    nme, nme_change (absolute) and nme_change_rel (relative to Keras), size_bytes,
    latency_ms_b1 (median of `repeats` batch-1 calls), ops."""
    from fadenn_tf.tflite_runner import (load_tflite, median_latency_ms, op_names, run_tflite,
                                         tflite_latency_ms)
    serve = serving_function(model)
    x = np.asarray(crops, dtype=np.float32)
    ref = np.concatenate([serve(tf.constant(x[i:i + 16]))["landmarks"].numpy()
                          for i in range(0, len(x), 16)])
    ref_nme = _image_nme(ref, ev, normalizer) if ev is not None else None
    one = tf.constant(x[:1])
    rows = [{"variant": "keras", "max_landmark_diff_px": 0.0, "mean_landmark_diff_px": 0.0,
             "nme": ref_nme, "nme_change": 0.0 if ref_nme is not None else None,
             "nme_change_rel": 0.0 if ref_nme is not None else None, "size_bytes": None,
             "latency_ms_b1": median_latency_ms(lambda: serve(one), repeats)}]

    def row(name, pred, size, lat, extra=None):
        d = np.abs(pred - ref)
        r = {"variant": name, "max_landmark_diff_px": float(d.max()),
             "mean_landmark_diff_px": float(d.mean()), "nme": None, "nme_change": None,
             "nme_change_rel": None, "size_bytes": size, "latency_ms_b1": lat}
        if ev is not None:
            r["nme"] = _image_nme(pred, ev, normalizer)
            r["nme_change"] = r["nme"] - ref_nme
            r["nme_change_rel"] = r["nme_change"] / ref_nme if ref_nme else None
        r.update(extra or {})
        rows.append(r)

    if saved_model_dir is not None:
        sig = tf.saved_model.load(str(saved_model_dir)).signatures[SERVING_SIGNATURE]
        pred = np.concatenate([sig(images=tf.constant(x[i:i + 16]))["landmarks"].numpy()
                               for i in range(0, len(x), 16)])
        size = sum(f.stat().st_size for f in Path(saved_model_dir).rglob("*") if f.is_file())
        row("saved_model", pred, size, median_latency_ms(lambda: sig(images=one), repeats))
    for name, path in tflite_paths.items():
        it = load_tflite(path)
        pred = run_tflite(it, x, batch_size=1)["landmarks"]
        row(f"tflite_{name}", pred, Path(path).stat().st_size,
            tflite_latency_ms(it, x[0], repeats), {"ops": op_names(it)})
    return {"normalizer": normalizer, "n_images": int(len(x)), "crop_size": int(x.shape[1]),
            "landmark_units": "pixels of the S x S crop", "rows": rows}


def format_report_markdown(report, title="Parity"):
    """Markdown table of a parity_report."""
    lines = [f"# {title}", "",
             f"{report['n_images']} test crops of {report['crop_size']} px; landmark "
             f"differences in {report['landmark_units']}; NME normaliser: "
             f"{report['normalizer']} (on original-image coordinates); latency: median, "
             "batch 1, this machine.", "",
             "| variant | max diff px | mean diff px | NME | NME change (rel) | size MB "
             "| latency ms |", "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        nme_s = "-" if r["nme"] is None else f"{r['nme']:.5f}"
        ch = ("-" if r["nme_change"] is None else
              f"{r['nme_change']:+.5f} ({100 * (r['nme_change_rel'] or 0):+.2f}%)")
        size = "-" if r["size_bytes"] is None else f"{r['size_bytes'] / 1e6:.2f}"
        lines.append(f"| {r['variant']} | {r['max_landmark_diff_px']:.4f} | "
                     f"{r['mean_landmark_diff_px']:.4f} | {nme_s} | {ch} | {size} | "
                     f"{r['latency_ms_b1']:.2f} |")
    return "\n".join(lines) + "\n"


def write_report(report, folder, title="Parity"):
    """Write parity.json and parity.md into `folder`; returns the Markdown text."""
    md = format_report_markdown(report, title)
    write_json_atomic(Path(folder) / "parity.json", report)
    write_text_atomic(Path(folder) / "parity.md", md)
    return md


# ----------------------------------------------------------------------------- CLI

def _parse_variants(text):
    if not text:
        return []
    vs = [v.strip() for v in text.split(",") if v.strip()]
    if "all" in vs:
        return list(TFLITE_VARIANTS)
    bad = [v for v in vs if v not in TFLITE_VARIANTS]
    if bad:
        raise SystemExit(f"--tflite: unknown variant(s) {bad}; choose from "
                         f"{', '.join(TFLITE_VARIANTS)} or all")
    return vs


def _synthetic_check_inputs(size, n=4, seed=0):
    """Smooth random 0..255 images for a quick parity check when no --report is asked."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (n, max(2, size // 8), max(2, size // 8), 3)).astype(np.float32)
    return tf.image.resize(small, (size, size)).numpy()


def build_parser():
    from fadenn_tf.utils.cli import make_parser
    p = make_parser("export", __doc__, version_value=("serving_version", positive_int))
    p.add_argument("--model", required=True, metavar="PATH",
                   help=".keras file or training workdir")
    p.add_argument("--out", required=True, help="export root, e.g. exported/fadenn_m")
    p.add_argument("--serving-version", type=positive_int, default=None, metavar="N",
                   help="TF Serving version folder OUT/N (default: the next free one)")
    p.add_argument("--tflite", default="", help="comma list of float32,float16,"
                                                "dynamic_int8,int8 (or all)")
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
    return p


@one_writer
def main(argv=None):
    a = build_parser().parse_args(argv)
    variants = _parse_variants(a.tflite)
    from fadenn_tf.models import read_metadata
    try:
        take_lock(a.out, "export")  # one writer per export root
        for d in [Path(a.out), *Path(a.out).glob("tflite-*")]:
            for stale in remove_stale_temporaries(d):
                print(f"removed {stale} (left by a killed export)", file=sys.stderr)
        model, src = load_export_model(a.model)
        size = model_size(model)
        print(f"model {model.name} from {src}: input {size}x{size}")
        meta = read_metadata(src) or {}
        vdir = export_saved_model(model, a.out, a.serving_version, meta.get("variant"),
                                  meta.get("config_name"))
        print(f"SavedModel -> {vdir} (signatures {SERVING_SIGNATURE}, {BYTES_SIGNATURE})")
        tdir = Path(a.out) / f"tflite-{vdir.name}"
        rep = None
        if "int8" in variants:
            rep, _ = load_crops(a.data, size, "train", a.max_images, noisy=True)
        paths = (write_tflite_variants(vdir, tdir, variants, rep, a.tflite_batch, model)
                 if variants else {})
        for v, path in paths.items():
            print(f"TFLite {v} -> {path} ({path.stat().st_size / 1e6:.2f} MB)")
        if a.report:
            crops, ev = load_crops(a.data, size, "test", a.max_images)
            report = parity_report(model, paths, crops, ev, a.normalizer, a.repeats, vdir)
            report.update(model=str(src), saved_model=str(vdir))
            tdir.mkdir(parents=True, exist_ok=True)
            print(write_report(report, tdir, f"Parity of {model.name} ({src})"))
            print(f"report -> {tdir}/parity.json, parity.md")
        elif paths:
            report = parity_report(model, paths, _synthetic_check_inputs(size), None,
                                   repeats=3)
            for r in report["rows"][1:]:
                print(f"{r['variant']}: max landmark diff {r['max_landmark_diff_px']:.4f} px "
                      "(random smooth inputs)")
    except (DataError, LockedError, FileExistsError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
