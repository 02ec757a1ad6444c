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
