"""Files of the `predict` command: which images to read, and the .pts and overlay written
per image."""
from pathlib import Path

import numpy as np

from fadenn_tf.data.images import IMAGE_EXTENSIONS


def find_images(inputs):
    """Expand files and folders (searched recursively for IMAGE_EXTENSIONS) into
    (path, output name without extension) pairs; names keep the sub-folder of a folder
    argument and are made unique. Missing inputs come back with name None."""
    out, used = [], set()
    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*")
                           if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            pairs = [(f, f.relative_to(p).with_suffix("").as_posix()) for f in files]
        elif p.exists():
            pairs = [(p, p.stem)]
        else:
            out.append((p, None))
            continue
        for f, name in pairs:
            base, k = name, 1
            while name in used:
                k += 1
                name = f"{base}-{k}"
            used.add(name)
            out.append((f, name))
    return out


def write_image_outputs(out_dir, name, result, image, overlay):
    from fadenn_tf.data.pts import write_pts
    files = []
    for k, face in enumerate(result.faces):
        suffix = "" if len(result.faces) == 1 else f"_{k}"
        path = out_dir / f"{name}{suffix}.pts"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pts(path, face.landmarks)
        files.append(str(path))
    overlay_path = None
    if overlay:
        import cv2
        from fadenn_tf.drawing import RED, draw_face, draw_text
        img = image
        for k, face in enumerate(result.faces):
            label = face.box_source + (f" {face.noise_name}" if face.noise_name else "")
            if len(result.faces) > 1:
                label = f"{k}: {label}"
            img = draw_face(img, face.landmarks, face.box, face.box_source, label)
        if not result.faces:
            img = draw_text(img, "no face", (6, 22), RED)
        overlay_path = out_dir / f"{name}_overlay.png"
        overlay_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(overlay_path), np.ascontiguousarray(img[:, :, ::-1]))
    return files, overlay_path


def record_result(entry, result, files, overlay):
    """Fill an image's summary.json entry from its FaceResults and the files written."""
    entry["status"] = "ok" if result.faces else "no face"
    entry["n_faces"] = len(result.faces)
    entry["faces"] = [dict(f.to_dict(landmarks=False), pts=fp)
                      for f, fp in zip(result.faces, files)]
    entry["overlay"] = None if overlay is None else str(overlay)
    entry["timing"] = {k: round(v, 5) for k, v in result.timing.items()}


def write_summary(out_dir, entries, predictor, settings, total_s, warm_up_s):
    """OUT/summary.json: the run's settings (detector, detector_options, backend,
    boxes_file, all_faces), the counts and the image entries -> (path, summary)."""
    from fadenn_tf.utils.atomic import write_json_atomic
    status = [e.get("status") for e in entries]
    summary = {
        "model": predictor.model.path, "model_kind": predictor.model.kind,
        "input_size": predictor.size, "detector": settings["detector"],
        "detector_options": settings["detector_options"], "backend": settings["backend"],
        "failure_detector": getattr(predictor.failure_detector, "source", None),
        "boxes_file": settings["boxes_file"], "all_faces": settings["all_faces"],
        "coordinates": ".pts files are 1-based (ibug convention; fadenn_tf.data.pts.read_pts "
                       "returns 0-based pixel centres); boxes are (x0, y0, x1, y1) pixel-edge "
                       "coordinates",
        "n_images": len(entries), "n_processed": sum(s in ("ok", "no face") for s in status),
        "n_no_face": status.count("no face"), "n_errors": status.count("error"),
        "total_s": round(total_s, 3), "warm_up_s": round(warm_up_s, 3), "images": entries}
    path = Path(out_dir) / "summary.json"
    write_json_atomic(path, summary)
    return path, summary
