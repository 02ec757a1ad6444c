"""The synthetic data set on disk: still images in the 300-W layout, videos in the 300-VW
layout, README.txt and manifest.json; the same seed gives the same bytes."""
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from fadenn_tf.data.pts import write_pts
from fadenn_tf.data.synthetic.rendering import draw_sample, jpeg_roundtrip
from fadenn_tf.data.synthetic.sampling import sample_params
from fadenn_tf.data.synthetic.video import DEFAULT_FRAME_SIZE, write_video
from fadenn_tf.utils.atomic import atomic_path, write_json_atomic, write_text_atomic
from fadenn_tf.utils.processes import run_in_workers
from fadenn_tf.utils.progress import progress as bar

DATASET_VERSION = 1
# 300-W folders and their share of the official image counts.
TRAIN_FOLDERS = (("afw", 337), ("helen/trainset", 2000), ("lfpw/trainset", 811))
TEST_FOLDERS = (("helen/testset", 330), ("lfpw/testset", 224), ("ibug", 135))
# 300-VW category-3 test ids first, then categories 1 and 2, so index_300vw(root, 3) finds them.
VIDEO_IDS = ("410", "411", "516", "517", "526", "528", "529", "530", "531", "533", "557", "558",
             "559", "562", "114", "124", "125", "126", "150", "158", "401", "402", "505", "506")
_KIND = {"train": 1, "test": 2, "video": 3}


@dataclass
class SynthSpec:
    """What a synthetic dataset holds (generate_dataset; the `synth` flags --train, --test,
    --videos, --frames, --seed, --size). n_train, n_test: still images (0 or >= 3, one per
    300-W folder); n_videos (<= len(VIDEO_IDS)) of n_frames frames each. image_size: None
    (random 200-500 px sides) or an int / (H, W) in pixels for every still; frame_size:
    (H, W) of the video frames (None: video.DEFAULT_FRAME_SIZE)."""
    n_train: int = 1200
    n_test: int = 300
    n_videos: int = 6
    n_frames: int = 120
    seed: int = 0
    image_size: object = None
    frame_size: Optional[tuple] = None


def sample_rng(seed, kind, index):
    """The Generator of sample `index` of `kind` ("train", "test", "video") for `seed`."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _KIND[kind], int(index)]))


def _allocate(n, folders):
    """Split n images over folders in proportion to their weights, at least 1 each."""
    weights = np.array([w for _, w in folders], np.float64)
    counts = np.maximum(1, np.floor(n * weights / weights.sum())).astype(int)
    while counts.sum() < n:
        counts[int(np.argmax(n * weights / weights.sum() - counts))] += 1
    while counts.sum() > n:
        counts[int(np.argmax(counts))] -= 1
    out = []
    for (name, _), c in zip(folders, counts):
        out += [name] * int(c)
    return out


def still_jobs(n_train, n_test, seed, image_size=None):
    """The list of still images to make: dicts with kind, index, folder, name, ext, split."""
    for n, what in ((n_train, "train"), (n_test, "test")):
        if n != 0 and n < 3:
            raise ValueError(f"n_{what} must be 0 or at least 3 (one per 300-W folder), got {n}")
    jobs = []
    for kind, n, folders in (("train", n_train, TRAIN_FOLDERS), ("test", n_test, TEST_FOLDERS)):
        for i, folder in enumerate(_allocate(n, folders) if n else []):
            jobs.append({"kind": kind, "index": i, "folder": folder, "seed": int(seed),
                         "name": f"synth_{kind}_{i:05d}",
                         "ext": ".png" if folder.startswith("lfpw") else ".jpg",
                         "split": "ibug" if folder == "ibug" else "train",
                         "image_size": image_size})
    return jobs


def make_still(job, root):
    """Render and write one still (image + .pts) under root/300w; returns its manifest entry."""
    rng = sample_rng(job["seed"], job["kind"], job["index"])
    params = sample_params(rng, job["split"], job["image_size"])
    img, lm, meta = draw_sample(params)
    q = params["post"]["jpeg_quality"]
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if job["ext"] == ".jpg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(q or 95)])
    else:
        if q:
            bgr = cv2.cvtColor(jpeg_roundtrip(img, q), cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"cannot encode {job['name']}{job['ext']}")
    folder = Path(root) / "300w" / job["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (job["name"] + job["ext"])).write_bytes(buf.tobytes())
    write_pts(folder / (job["name"] + ".pts"), lm)
    pose = params["pose"]
    return {"file": f"300w/{job['folder']}/{job['name']}{job['ext']}",
            "size": [int(img.shape[0]), int(img.shape[1])],
            "yaw": round(pose["yaw"], 2), "pitch": round(pose["pitch"], 2),
            "roll": round(pose["roll"], 2), "occluded_points": int(meta["occluded"].sum())}


def _readme(counts, seed):
    return f"""fadenn_tf synthetic faces (version {DATASET_VERSION})

Procedurally drawn cartoon faces with exact 68-point landmarks (ibug / 300-W markup),
made by `python -m fadenn_tf.synth` (fadenn_tf.data.synthetic), seed {seed}.
For trying every command, tests, demos and sanity checks of training. A model trained on
it is NOT a model for real faces: use 300-W / Menpo / 300-VW for that.

300w/   the 300-W layout: train = afw + helen/trainset + lfpw/trainset ({counts['train']} images),
        common test = helen/testset + lfpw/testset, challenging = ibug (harder poses,
        occlusion, imaging); {counts['test']} test images in all. NAME.jpg/.png beside NAME.pts
        (1-based ibug coordinates).
300vw/  the 300-VW layout: {counts['videos']} videos of {counts['frames']} frames, <id>/vid.avi (MJPG)
        + <id>/annot/000001.pts ...; ids are real 300-VW category-3 test ids first.
manifest.json  counts, seed and per-image pose / occlusion.
"""


def generate_dataset(out, spec=None, progress=False, workers=1):
    """Generate a synthetic dataset in the 300-W and 300-VW layouts under `out`.

    spec: a SynthSpec (counts, seed, sizes; default SynthSpec()).
    out must not exist or be an empty folder; the dataset is written into a temporary
    folder beside it and renamed onto `out` at the end, so it appears complete or not at all.
    Every sample has its own seed derived from (seed, kind, index): the same spec gives
    the same bytes, whatever `workers` (processes) is.
    progress: show a progress bar (CLIs only). Returns the Path of `out`.
    """
    spec = spec or SynthSpec()
    n_train, n_test, n_videos = spec.n_train, spec.n_test, spec.n_videos
    n_frames = spec.n_frames
    seed, image_size = spec.seed, spec.image_size
    out = Path(out)
    if n_videos > len(VIDEO_IDS):
        raise ValueError(f"at most {len(VIDEO_IDS)} videos, got {n_videos}")
    if n_videos and n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    if out.exists():
        if not out.is_dir() or any(out.iterdir()):
            raise FileExistsError(f"{out}: already exists and is not an empty folder")
        out.rmdir()
    frame_size = tuple(spec.frame_size or DEFAULT_FRAME_SIZE)
    jobs = still_jobs(n_train, n_test, seed, image_size)
    total = len(jobs) + n_videos
    with atomic_path(out, is_dir=True) as tmp:
        with bar(total=total, desc="synthetic faces", enabled=progress, unit="item") as pb:
            entries = []
            if workers > 1 and len(jobs) > 1:   # workers die with this process
                for e in run_in_workers(functools.partial(make_still, root=tmp), jobs,
                                        workers, ordered=True):
                    entries.append(e)
                    pb.update(1)
            else:
                for job in jobs:
                    entries.append(make_still(job, tmp))
                    pb.update(1)
            videos = []
            for v in range(n_videos):
                vid = VIDEO_IDS[v]
                n = write_video(tmp / "300vw" / vid, sample_rng(seed, "video", v), n_frames,
                                frame_size)
                videos.append({"id": vid, "frames": n, "size": list(frame_size)})
                pb.update(1)
        counts = {"train": n_train, "test": n_test, "videos": n_videos, "frames": n_frames}
        write_text_atomic(tmp / "README.txt", _readme(counts, seed))
        write_json_atomic(tmp / "manifest.json", {
            "name": "fadenn_tf synthetic faces", "version": DATASET_VERSION, "seed": int(seed),
            "counts": counts, "image_size": image_size, "frame_size": list(frame_size),
            "complete": True, "videos": videos, "stills": entries})
    return out
