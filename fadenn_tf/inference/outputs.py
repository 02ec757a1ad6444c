"""Files of the `predict` command: which images to read, and the .pts and overlay written
per image."""
from pathlib import Path

from fadenn_tf.data.images import IMAGE_EXTENSIONS
from fadenn_tf.data.pts import write_pts
from fadenn_tf.drawing import GREY, RED, draw_box, draw_face, draw_landmarks, draw_text
from fadenn_tf.utils.atomic import write_image_atomic, write_json_atomic


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


def write_image_outputs(out_dir, name, result, image, overlay, drop_rejected=False):
    """Write OUT/NAME.pts (or NAME_k.pts per face), NAME_rejected.pts (or
    NAME_rejected_k.pts) per rejected fit unless drop_rejected, and, with `overlay`,
    OUT/NAME_overlay.png for one image's result; every file is written atomically and
    checked. Returns (the .pts paths: faces, then rejected fits; the overlay path or None).
    Raises fadenn_tf.errors.WriteError naming the file that could not be written (full
    disk, unwritable folder); the files of this image written before it are deleted again,
    so no partial result stays behind."""
    files, overlay_path = [], None
    groups = [("", result.faces)] + ([] if drop_rejected else [("_rejected", result.rejected)])
    try:
        for tag, faces in groups:
            for k, face in enumerate(faces):
                suffix = tag + ("" if len(faces) == 1 else f"_{k}")
                path = out_dir / f"{name}{suffix}.pts"
                write_pts(path, face.landmarks)
                files.append(str(path))
        if overlay:
            overlay_path = out_dir / f"{name}_overlay.png"
            write_image_atomic(overlay_path,
                               _overlay(image, result, drop_rejected)[:, :, ::-1])
    except Exception:
        for f in files:
            Path(f).unlink(missing_ok=True)
        raise
    return files, overlay_path


def _overlay(image, result, drop_rejected=False):
    """The RGB image with every face's landmarks, box and label drawn ("no face" if none);
    rejected fits (unless dropped): a red box labelled "rejected fit <score>" around grey
    landmarks."""
    img = image
    for k, face in enumerate(result.faces):
        label = face.box_source + (f" {face.noise_name}" if face.noise_name else "")
        if len(result.faces) > 1:
            label = f"{k}: {label}"
        img = draw_face(img, face.landmarks, face.box, face.box_source, label)
    for face in ([] if drop_rejected else result.rejected):
        img = draw_box(img, face.box, RED, f"rejected fit {face.fit_score:.2f}")
        img = draw_landmarks(img, face.landmarks, GREY, point_color=GREY)
    if not result.faces:
        img = draw_text(img, "no face" + (" (fit rejected)" if result.rejected else ""),
                        (6, 22), RED)
    return img


def record_result(entry, result, files, overlay, drop_rejected=False):
    """Fill an image's summary.json entry from its FaceResults and the files written:
    status "ok" (a face), "rejected" (only fits below min_fit_score) or "no face";
    n_faces and n_rejected count apart; "faces" lists faces, then rejected fits (each
    with its own status) unless drop_rejected."""
    entry["status"] = "ok" if result.faces else "rejected" if result.rejected else "no face"
    entry["n_faces"] = len(result.faces)
    entry["n_rejected"] = len(result.rejected)
    listed = result.faces + ([] if drop_rejected else result.rejected)
    entry["faces"] = [dict(f.to_dict(landmarks=False), pts=fp)
                      for f, fp in zip(listed, files)]
    entry["overlay"] = None if overlay is None else str(overlay)
    entry["timing"] = {k: round(v, 5) for k, v in result.timing.items()}


def write_summary(out_dir, entries, predictor, settings, total_s, warm_up_s):
    """OUT/summary.json: the run's settings (detector, detector_options, backend,
    boxes_file, all_faces, refine, min_fit_score, drop_rejected), the counts (images by status;
    n_faces and n_rejected fits) and the image entries -> (path, summary)."""
    status = [e.get("status") for e in entries]
    summary = {
        "model": predictor.model.path, "model_kind": predictor.model.kind,
        "input_size": predictor.size, "detector": settings["detector"],
        "detector_options": settings["detector_options"], "backend": settings["backend"],
        "failure_detector": getattr(predictor.failure_detector, "source", None),
        "min_fit_score": (predictor.min_fit_score if predictor.failure_detector is not None
                          else None),
        "drop_rejected": bool(settings.get("drop_rejected", False)),
        "boxes_file": settings["boxes_file"], "all_faces": settings["all_faces"],
        "refine": settings.get("refine", "auto"),
        "coordinates": ".pts files are 1-based (ibug convention; fadenn_tf.data.pts.read_pts "
                       "returns 0-based pixel centres); boxes are (x0, y0, x1, y1) pixel-edge "
                       "coordinates",
        "n_images": len(entries),
        "n_processed": sum(s in ("ok", "rejected", "no face") for s in status),
        "n_no_face": status.count("no face"), "n_only_rejected": status.count("rejected"),
        "n_errors": status.count("error"),
        "n_faces": sum(e.get("n_faces", 0) for e in entries),
        "n_rejected": sum(e.get("n_rejected", 0) for e in entries),
        "total_s": round(total_s, 3), "warm_up_s": round(warm_up_s, 3), "images": entries}
    path = Path(out_dir) / "summary.json"
    write_json_atomic(path, summary)
    return path, summary
