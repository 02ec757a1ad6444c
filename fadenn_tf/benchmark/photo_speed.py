"""End-to-end rows of `bench` (section "e2e"): whole photos to landmarks through the public
API, per photo and per extra face, dlib's HOG detector + ERT on the same photos when dlib is
installed, and the start-up of a fresh process (import + load + first predict).

Every row's note names what was timed, the CPU and the 1-minute load average when the row
was measured (the machine may be shared)."""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import fadenn_tf
from fadenn_tf.benchmark.machine import cpu_count, cpu_name
from fadenn_tf.benchmark.report import _row
from fadenn_tf.benchmark.settings import DLIB_MODEL
from fadenn_tf.data.images import IMAGE_EXTENSIONS, read_image
from fadenn_tf.deploy.litert import median_latency_ms
from fadenn_tf.errors import DataError
from fadenn_tf.evaluation.dlib_peer import DlibUnavailable, find_model


def find_photos(folder, limit=0):
    """(image paths sorted, {path: number of annotated faces or None}) of a folder of whole
    photos (searched recursively); a photo's annotations are `<stem>.pts` or `<stem>_<k>.pts`
    beside it (as in 300-W / AFW). limit: at most this many photos (0 = all). Raises
    DataError when the folder holds no image."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(root, "not a folder of photos")
    photos = sorted(f for f in root.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
    if not photos:
        raise DataError(root, f"no images ({' '.join(IMAGE_EXTENSIONS)}) in this folder")
    photos = photos[:int(limit)] if limit else photos
    counts = {}
    for p in photos:
        n = len(list(p.parent.glob(f"{p.stem}_*.pts"))) + p.with_suffix(".pts").is_file()
        counts[p] = n or None
    return photos, counts


def where_note():
    """'; CPU <model>, load <1-min average>': the end of every e2e row's note."""
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load = "unknown"
    return f"; CPU {cpu_name()} ({cpu_count()} cores), load {load} (1-min average)"


def _median_ms(fn, repeats):
    return median_latency_ms(fn, repeats, 1)


def bench_photos(model, folder, repeats=5, limit=0, label=None):
    """Our rows on the photos of `folder` (find_photos) with fadenn_tf.load(model) and its
    defaults (detector, backend, fit score): one face per photo (predict(image), decoded
    RGB in memory: detector + crop + model + fit score), and per extra face ((predict(
    image, all_faces=True) - predict(image)) / (faces - 1) on photos where the detector
    finds 2 or more), and one face without the default second pass (predict(image,
    refine=False)).
    Medians over photos of the median of `repeats` calls. Returns rows."""
    photos, counts = find_photos(folder, limit)
    pred = fadenn_tf.load(model)
    pred.warm_up()
    label = label or str(model)
    per_photo, detect, decode, extra, found, n_all, annotated = [], [], [], [], 0, 0, 0
    once = []
    side = 0
    for path in photos:
        t0 = time.perf_counter()
        img = read_image(path)
        decode.append((time.perf_counter() - t0) * 1e3)
        side = max(side, *img.shape[:2])
        one = pred.predict(img)[0]
        found += one.found
        per_photo.append(_median_ms(lambda: pred.predict(img), repeats))
        detect.append(one.timing["detect"] * 1e3)
        once.append(_median_ms(lambda: pred.predict(img, refine=False), repeats))
        every = pred.predict(img, all_faces=True)[0]
        n_all += len(every.faces)
        annotated += counts[path] or 0
        k = len(every.faces) + len(every.rejected)
        if k >= 2:
            ms_all = _median_ms(lambda: pred.predict(img, all_faces=True), repeats)
            extra.append((ms_all - per_photo[-1]) / (k - 1))
    where = f"{len(photos)} photos of {folder}"
    ms = statistics.median(per_photo)
    rows = [_row("e2e", "-", label, "photo to landmarks, one face", batch=1,
                 latency_ms_b1=ms, images_per_s=1e3 / ms,
                 note=f"predict(photo) with load() and predict() defaults ({pred.model.kind}, "
                      f"detector {_detector_name(pred)}, refine auto, fit score): median over "
                      f"{where} (longer side up to {side} px) of the median of {repeats} "
                      f"calls; "
                      f"detector {statistics.median(detect):.1f} ms of it; decoding the "
                      f"file adds {statistics.median(decode):.1f} ms; a face on "
                      f"{found}/{len(photos)} photos" + where_note())]
    rows.append(_row("e2e", "-", label, "photo to landmarks, one face, refine=False", batch=1,
                     latency_ms_b1=statistics.median(once),
                     images_per_s=1e3 / statistics.median(once),
                     note="predict(photo, refine=False): one pass, without the default "
                          "second fit in the first fit's landmark box (inference.refine); "
                          f"median over {where}" + where_note()))
    if extra:
        rows.append(_row("e2e", "-", label, "per extra face (all_faces)", batch=1,
                         latency_ms_b1=statistics.median(extra),
                         note=f"(predict(photo, all_faces=True) - predict(photo)) / (faces "
                              f"- 1), median over the {len(extra)} photos with 2 or more "
                              f"detected faces; {n_all} faces found on all photos"
                              + (f" ({annotated} annotated)" if annotated else "")
                              + where_note()))
    else:
        rows.append(_row("e2e", "-", label, "per extra face (all_faces)",
                         error=f"no photo of {where} has 2 or more detected faces"))
    return rows


def _detector_name(pred):
    det = pred.detector
    return getattr(det, "name", None) or type(det).__name__


def bench_dlib_photos(folder, model_path=None, repeats=3, limit=0):
    """dlib on the same photos: its HOG detector (get_frontal_face_detector, upsample 0,
    full resolution, the photo as decoded RGB) alone, and with the ERT 68-point predictor
    on its first box (photo to landmarks), plus ERT per extra face. Rows with an "error"
    saying why when dlib or the ERT model file (evaluation.dlib_peer.find_model) is
    missing."""
    where = f"{folder}"
    try:
        import dlib  # lazy: optional dependency dlib
    except ImportError:
        return [_row("e2e", "-", "dlib HOG + ERT", "photo to landmarks, one face",
                     error="skipped: dlib is not installed (pip install 'fadenn_tf[dlib]')")]
    photos, _ = find_photos(folder, limit)
    hog = dlib.get_frontal_face_detector()
    ert, why = _dlib_ert(dlib, model_path)
    det_ms, full_ms, ert_ms, found = [], [], [], 0
    for path in photos:
        img = np.ascontiguousarray(read_image(path))
        rects = hog(img, 0)
        found += len(rects) > 0
        det_ms.append(_median_ms(lambda: hog(img, 0), repeats))
        if ert is not None and len(rects):
            ert_ms.append(_median_ms(lambda: ert(img, rects[0]), repeats))
            full_ms.append(det_ms[-1] + ert_ms[-1])
    ms = statistics.median(det_ms)
    rows = [_row("e2e", "-", f"dlib {dlib.__version__} HOG", "face detector alone",
                 batch=1, latency_ms_b1=ms, images_per_s=1e3 / ms,
                 note=f"get_frontal_face_detector()(photo, 0) (upsample 0, full "
                      f"resolution): median over {len(photos)} photos of {where} of the "
                      f"median of {repeats} calls; a face on {found}/{len(photos)} photos"
                      + where_note())]
    if ert is None:
        rows.append(_row("e2e", "-", "dlib HOG + ERT", "photo to landmarks, one face",
                         error=f"skipped: {why}"))
        return rows
    ms = statistics.median(full_ms)
    rows.append(_row("e2e", "-", f"dlib {dlib.__version__} HOG + ERT",
                     "photo to landmarks, one face", batch=1, latency_ms_b1=ms,
                     images_per_s=1e3 / ms,
                     note=f"HOG detector + shape_predictor on its first box: median over "
                          f"the {len(full_ms)} photos of {where} where HOG finds a face"
                          + where_note()))
    rows.append(_row("e2e", "-", f"dlib {dlib.__version__} ERT", "per extra face",
                     batch=1, latency_ms_b1=statistics.median(ert_ms),
                     note="shape_predictor on one HOG box (what each extra face adds), "
                          f"median over {len(ert_ms)} photos" + where_note()))
    return rows


def _dlib_ert(dlib, model_path):
    """(dlib.shape_predictor or None, why not): the model file as evaluate --dlib finds it
    (the given path, else the default places). dlib: the imported module."""
    try:
        path = find_model(None if model_path in (None, DLIB_MODEL) else model_path)
    except DlibUnavailable as exc:
        return None, str(exc)
    return dlib.shape_predictor(path), None


STARTUP_CODE = """import json, sys, time
t0 = time.perf_counter()
import fadenn_tf
t1 = time.perf_counter()
model = fadenn_tf.load(sys.argv[1])
t2 = time.perf_counter()
from fadenn_tf.data.images import read_image
result = model.predict(read_image(sys.argv[2]))[0]
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first_predict": t3 - t2,
                  "total": t3 - t0, "found": result.found,
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def bench_startup(model, photo, runs=3, timeout=600):
    """Start-up of a fresh Python process (`runs` of them, median): `import fadenn_tf`,
    fadenn_tf.load(model), read + predict(photo), timed inside the process; the wall time
    seen from outside adds the interpreter's own start. Returns one row."""
    inside, outside, last = [], [], None
    for _ in range(int(runs)):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", STARTUP_CODE, str(model), str(photo)],
                             capture_output=True, text=True, timeout=timeout)
        outside.append(time.perf_counter() - t0)
        if out.returncode != 0:
            return _row("e2e", "-", str(model), "start-up: import + load + first predict",
                        error=f"the fresh process failed: {out.stderr.strip()[-300:]}")
        last = json.loads(out.stdout.strip().splitlines()[-1])
        inside.append(last)
    med = {k: statistics.median(r[k] for r in inside)
           for k in ("import", "load", "first_predict", "total")}
    return _row("e2e", "-", str(model), "start-up: import + load + first predict",
                latency_ms_b1=med["total"] * 1e3,
                note=f"fresh process, median of {runs}: import fadenn_tf "
                     f"{med['import']:.2f} s, load {med['load']:.2f} s, read + first "
                     f"predict on {Path(photo).name} {med['first_predict']:.2f} s (ms column "
                     f"= their sum); {statistics.median(outside):.2f} s with the "
                     f"interpreter's start; TensorFlow imported: {last['tensorflow']}"
                     + where_note())
