"""Dataset indexers: 300-W (+ private test set), Menpo 2D, 300-VW and a generic folder.

Every indexer returns `(samples, report)`: a list of fadenn_tf.data.sample.Sample and an
IndexReport. A bad sample (missing or malformed .pts, wrong point count, NaN, unreadable or
truncated image, landmark box entirely outside the image) is skipped and listed in
`report.skipped` as (path, problem); indexing never stops half-way. A missing or empty folder,
or a dataset with no usable sample at all, raises DataError naming the folder.

Landmarks are (68, 2) float64, 0-based pixel-centre (x, y) (see fadenn_tf.data.pts).
Landmarks slightly outside the image are kept (300-W has many); only a landmark box that does
not touch the image at all is an error.
"""
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fadenn_tf.data.images import ANNOTATED_IMAGE_EXTENSIONS as IMAGE_EXTS
from fadenn_tf.data.images import (VideoFrameReader, check_image, read_image,
                                   video_frame_count, video_size)
from fadenn_tf.data.pts import read_pts
from fadenn_tf.data.sample import Sample
from fadenn_tf.errors import DataError

# 300-W: split -> folders (relative to the root). "test" is an alias of "full".
SPLITS_300W = {
    "train": ("afw", "helen/trainset", "lfpw/trainset"),
    "common": ("helen/testset", "lfpw/testset"),
    "challenging": ("ibug",),
    "full": ("helen/testset", "lfpw/testset", "ibug"),
    "test": ("helen/testset", "lfpw/testset", "ibug"),
    "indoor": ("01_Indoor",),
    "outdoor": ("02_Outdoor",),
    "private": ("01_Indoor", "02_Outdoor"),
}
# Image counts of the official releases, for a note in the report when they differ.
EXPECTED_300W = {"train": 3148, "common": 554, "challenging": 135, "full": 689, "test": 689,
                 "indoor": 300, "outdoor": 300, "private": 600}
_MARKERS_300W = ("afw", "helen", "lfpw", "ibug", "01_Indoor", "02_Outdoor")

# 300-VW test categories (video folder names). The 50 other videos of the 114 are training.
CATEGORIES_300VW = {
    1: ("114", "124", "125", "126", "150", "158", "401", "402", "505", "506", "507", "508",
        "509", "510", "511", "514", "515", "518", "519", "520", "521", "522", "524", "525",
        "537", "538", "540", "541", "546", "547", "548"),
    2: ("203", "208", "211", "212", "213", "214", "218", "224", "403", "404", "405", "406",
        "407", "408", "409", "412", "550", "551", "553"),
    3: ("410", "411", "516", "517", "526", "528", "529", "530", "531", "533", "557", "558",
        "559", "562"),
}
TEST_VIDEOS_300VW = tuple(sorted(v for vids in CATEGORIES_300VW.values() for v in vids))
VIDEO_FILE_300VW = "vid.avi"
_FRAME_PTS = re.compile(r"^(\d{6})\.pts$")
MENPO_PROFILE_POINTS = 39


@dataclass
class IndexReport:
    """What an indexer found.

    n_ok: samples returned. skipped: (path, problem) for every bad sample or file.
    profiles_skipped: Menpo 39-point profile files left out (not errors).
    missing_videos: 300-VW video ids asked for but absent. notes: other remarks
    (e.g. a count differing from the official release).
    """
    root: str
    format: str
    split: str = ""
    n_ok: int = 0
    skipped: list = field(default_factory=list)
    profiles_skipped: int = 0
    missing_videos: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def skip(self, path, problem):
        self.skipped.append((str(path), problem))

    def summary(self, max_items=20):
        """A human-readable summary: counts, then up to `max_items` skipped files."""
        head = f"{self.format} {self.root}" + (f" [{self.split}]" if self.split else "")
        lines = [f"{head}: {self.n_ok} samples, {len(self.skipped)} skipped"]
        if self.profiles_skipped:
            lines.append(f"  {self.profiles_skipped} profile (39-point) annotations left out")
        if self.missing_videos:
            lines.append(f"  missing videos: {' '.join(self.missing_videos)}")
        lines += [f"  note: {n}" for n in self.notes]
        for path, problem in self.skipped[:max_items]:
            lines.append(f"  skipped {path}: {problem}")
        if len(self.skipped) > max_items:
            lines.append(f"  ... and {len(self.skipped) - max_items} more skipped")
        return "\n".join(lines)


# ------------------------------------------------------------------------------- helpers

def _require_dir(folder, what="dataset folder"):
    folder = Path(folder)
    if not folder.exists():
        raise DataError(folder, f"{what} not found")
    if not folder.is_dir():
        raise DataError(folder, f"{what} is not a folder")
    return folder


def landmark_box_problem(landmarks, height, width):
    """None if the landmark box touches the image [-0.5, W-0.5] x [-0.5, H-0.5], else a
    description of the problem (box entirely outside, or zero width/height)."""
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    box = f"({x0:.1f}, {y0:.1f})-({x1:.1f}, {y1:.1f})"
    if x1 < -0.5 or y1 < -0.5 or x0 > width - 0.5 or y0 > height - 0.5:
        return f"landmark box {box} lies entirely outside the {width}x{height} image"
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return f"degenerate landmark box {box} (zero width or height)"
    return None


def _finish(samples, report, where):
    report.n_ok = len(samples)
    if not samples:
        raise DataError(where, "no usable samples\n" + report.summary())
    return samples, report


def _index_images(folder, report, subset_of, n_points=68, profile_points=None,
                  check_images=True, recursive=True):
    """Index images with a same-stem .pts beside them under `folder` into Samples.

    subset_of(parent_dir) -> subset name. Raises DataError if the folder is missing or holds
    no image; everything else is skipped into `report`.
    """
    folder = _require_dir(folder)
    files = sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir())
                   if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
    pts_by_key = {(p.parent, p.stem): p for p in files if p.suffix.lower() == ".pts"}
    if not images:
        raise DataError(folder, "no images (" + "/".join(IMAGE_EXTS) + ") found in folder"
                        + (" or its subfolders" if recursive else ""))
    by_key = {}
    for img in images:
        by_key.setdefault((img.parent, img.stem), []).append(img)
    samples = []
    for key, imgs in sorted(by_key.items()):
        if len(imgs) > 1:
            for img in imgs:
                report.skip(img, "several images share this name stem, so the .pts beside "
                                 "them is ambiguous: " + ", ".join(i.name for i in imgs))
            continue
        img = imgs[0]
        pts = pts_by_key.get(key)
        if pts is None:
            report.skip(img, f"no landmark file {img.stem}.pts beside the image")
            continue
        try:
            lms = read_pts(pts)
            if profile_points is not None and len(lms) == profile_points:
                report.profiles_skipped += 1
                continue
            if len(lms) != n_points:
                raise DataError(pts, f"expected {n_points} points, found {len(lms)}")
            h, w = check_image(img, decode=check_images)
            problem = landmark_box_problem(lms, h, w)
            if problem:
                raise DataError(pts, f"{problem} {img.name}")
        except DataError as exc:
            report.skip(exc.path, exc.problem)
            continue
        samples.append(Sample(image_path=str(img), landmarks=lms, pts_path=str(pts),
                              subset=subset_of(img.parent)))
    for key, pts in sorted(pts_by_key.items()):
        if key not in by_key:
            report.skip(pts, "no image (" + "/".join(IMAGE_EXTS) + ") beside this landmark file")
    return samples


def _rel_subset(root, parent, prefix=None):
    rel = parent.relative_to(root).as_posix()
    base = prefix if prefix is not None else root.name
    if rel == ".":
        return base
    return f"{prefix}/{rel}" if prefix else rel


# ------------------------------------------------------------------------------ indexers

def index_300w(root, split="train", check_images=True):
    """Index a 300-W split.

    root: the folder holding afw, helen/{trainset,testset}, lfpw/{trainset,testset}, ibug
    and/or 01_Indoor, 02_Outdoor (the private test set).
    split: train (afw + helen/trainset + lfpw/trainset), common (helen/testset +
    lfpw/testset), challenging (ibug), full or test (common + challenging), indoor, outdoor,
    private (indoor + outdoor). Sample.subset is the folder, e.g. "helen/testset".
    A folder the split needs that is missing or empty raises DataError.
    """
    if split not in SPLITS_300W:
        raise ValueError(f"unknown 300-W split {split!r}; choose one of {sorted(SPLITS_300W)}")
    root = _require_dir(root, "300-W root folder")
    report = IndexReport(root=str(root), format="300w", split=split)
    samples = []
    for sub in SPLITS_300W[split]:
        folder = root / sub
        if not folder.is_dir():
            raise DataError(folder, f"300-W folder needed by split {split!r} not found")
        samples += _index_images(folder, report, lambda _p, s=sub: s,
                                 check_images=check_images, recursive=False)
    expected = EXPECTED_300W[split]
    if len(samples) != expected:
        report.notes.append(f"the official 300-W {split} split has {expected} images; "
                            f"indexed {len(samples)}")
    return _finish(samples, report, root)


def index_menpo(root, check_images=True):
    """Index Menpo 2D: images with .pts beside them anywhere under `root`.

    68-point (semi-frontal) annotations are kept; 39-point profile annotations are left out
    and counted in report.profiles_skipped (not errors). Sample.subset is "menpo", or
    "menpo/<subfolder>" for files in subfolders.
    """
    root = _require_dir(root, "Menpo folder")
    report = IndexReport(root=str(root), format="menpo")
    samples = _index_images(root, report, lambda p: _rel_subset(root, p, "menpo"),
                            profile_points=MENPO_PROFILE_POINTS, check_images=check_images)
    return _finish(samples, report, root)


def index_folder(root, n_points=68, check_images=True):
    """Index any folder (recursively) of images with a same-stem .pts beside each.

    Sample.subset is the image's folder relative to root (the root's own name for files
    directly in it).
    """
    root = _require_dir(root)
    report = IndexReport(root=str(root), format="folder")
    samples = _index_images(root, report, lambda p: _rel_subset(root, p),
                            n_points=n_points, check_images=check_images)
    return _finish(samples, report, root)


def videos_300vw(root):
    """Sorted names of the video folders under a 300-VW root (folders holding vid.avi)."""
    root = _require_dir(root, "300-VW root folder")
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and (p / VIDEO_FILE_300VW).is_file())


def _select_videos(root, category, videos):
    if videos is not None:
        return [str(v) for v in videos], "videos"
    if category is None or category == "all":
        return videos_300vw(root), "all"
    if category == "test":
        return list(TEST_VIDEOS_300VW), "test"
    if category == "train":
        return [v for v in videos_300vw(root) if v not in TEST_VIDEOS_300VW], "train"
    cat = category
    if isinstance(cat, str):
        cat = cat.lower().removeprefix("category").removeprefix("cat")
        cat = int(cat) if cat.isdigit() else cat
    if cat not in CATEGORIES_300VW:
        raise ValueError(f"unknown 300-VW category {category!r}; choose 1, 2, 3, 'test', "
                         "'train', 'all' or None")
    return list(CATEGORIES_300VW[cat]), f"cat{cat}"


def index_300vw(root, category=None, videos=None, check_images=True):
    """Index 300-VW annotated frames.

    root: folder with one folder per video id holding vid.avi and annot/000001.pts ...
    (1-based, 6-digit frame numbers). category: None or "all" (every video present), 1, 2, 3
    (the test categories), "test" (all three) or "train" (present videos in no category).
    videos: explicit video ids (overrides category).
    Sample.image_path is the vid.avi path, Sample.frame the 0-based frame index (file number
    - 1), Sample.subset the video id. A requested video that is absent is reported in
    report.missing_videos and report.skipped. check_images=True opens each video to check it
    reads and that annotations do not go past its last frame (frames are not decoded).
    """
    root = _require_dir(root, "300-VW root folder")
    wanted, split = _select_videos(root, category, videos)
    report = IndexReport(root=str(root), format="300vw", split=split)
    if not wanted:
        raise DataError(root, f"no 300-VW video folders (<id>/{VIDEO_FILE_300VW}) found")
    samples = []
    for vid in wanted:
        folder = root / vid
        video = folder / VIDEO_FILE_300VW
        if not video.is_file():
            report.missing_videos.append(vid)
            report.skip(video, f"video {vid} ({split}) is missing from the dataset root")
            continue
        annot = folder / "annot"
        if not annot.is_dir():
            report.skip(annot, "annotation folder not found")
            continue
        n_frames, hw = None, None
        if check_images:
            try:
                n_frames = video_frame_count(video)
                hw = video_size(video)
            except DataError as exc:
                report.skip(exc.path, exc.problem)
                continue
        files = sorted(p for p in annot.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            report.skip(annot, "annotation folder is empty")
            continue
        for pts in files:
            m = _FRAME_PTS.match(pts.name)
            if not m:
                report.skip(pts, "unexpected file name in annot/ (want a 6-digit 1-based "
                                 "frame number, e.g. 000001.pts)")
                continue
            frame = int(m.group(1)) - 1
            try:
                if frame < 0:
                    raise DataError(pts, "frame numbers are 1-based; 000000 is not a frame")
                if n_frames is not None and frame >= n_frames:
                    raise DataError(pts, f"annotates frame {frame + 1} (1-based) but "
                                         f"{video} has {n_frames} frames")
                lms = read_pts(pts, 68)
                if hw is not None:
                    problem = landmark_box_problem(lms, *hw)
                    if problem:
                        raise DataError(pts, f"{problem} (frames of {video})")
            except DataError as exc:
                report.skip(exc.path, exc.problem)
                continue
            samples.append(Sample(image_path=str(video), landmarks=lms, pts_path=str(pts),
                                  subset=vid, frame=frame))
    return _finish(samples, report, root)


# ----------------------------------------------------------------------- dispatch, splits

def detect_format(root):
    """"300w" (has afw/helen/lfpw/ibug or 01_Indoor/02_Outdoor), "300vw" (has <id>/vid.avi
    folders) or "folder"."""
    root = _require_dir(root)
    if any((root / m).is_dir() for m in _MARKERS_300W):
        return "300w"
    if videos_300vw(root):
        return "300vw"
    return "folder"


def open_dataset(root, format="auto", split="train", check_images=True, val_fraction=0.15,
                 seed=0):
    """Index a dataset by format ("auto", "300w", "300vw", "menpo", "folder") and split.

    300w: the splits of index_300w. 300vw: "all", "train", "test", "cat1"/"cat2"/"cat3" (or
    1, 2, 3). menpo and folder have no test split: "all" returns everything, "train" and
    "val" (alias "test") are the two parts of split_holdout(samples, val_fraction, seed).
    Returns (samples, report).
    """
    fmt = detect_format(root) if format == "auto" else format
    if fmt == "300w":
        return index_300w(root, split, check_images=check_images)
    if fmt == "300vw":
        return index_300vw(root, category=split, check_images=check_images)
    if fmt == "menpo":
        samples, report = index_menpo(root, check_images=check_images)
    elif fmt == "folder":
        samples, report = index_folder(root, check_images=check_images)
    else:
        raise ValueError(f"unknown dataset format {format!r}; choose auto, 300w, 300vw, "
                         "menpo or folder (synthetic data is generated, not indexed)")
    if split == "all":
        report.split = "all"
        return samples, report
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r} for {fmt} data; choose all, train or val")
    if not 0 < val_fraction < 1:
        raise ValueError(f"split {split!r} needs 0 < val_fraction < 1, got {val_fraction}")
    train, val = split_holdout(samples, val_fraction, seed)
    chosen = train if split == "train" else val
    report.split = f"{split} (held-out {val_fraction:g}, seed {seed})"
    report.n_ok = len(chosen)
    return chosen, report


def split_holdout(samples, fraction, seed=0):
    """Deterministic held-out split -> (train, val), each in the input order.

    Stratified: round(fraction * n) samples of each subset (folder) go to val, chosen by a
    generator seeded with (seed, subset name), so the choice does not depend on the order of
    the input or on other folders. Video samples (frame set) are split by whole videos, never
    frames of one video on both sides. If rounding leaves val empty while fraction > 0 and
    there are at least 2 units, one unit of the largest subset goes to val.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    unit_of = [(s.image_path if s.frame is not None else (s.image_path, s.pts_path))
               for s in samples]
    groups = {}
    for s, u in zip(samples, unit_of):
        groups.setdefault(s.subset if s.frame is None else "", set()).add(u)
    val_units = set()
    for name in sorted(groups):
        units = sorted(groups[name], key=str)
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        k = int(round(fraction * len(units)))
        val_units.update(units[i] for i in rng.permutation(len(units))[:k])
    n_units = sum(len(g) for g in groups.values())
    if not val_units and fraction > 0 and n_units >= 2:
        name = max(sorted(groups), key=lambda g: len(groups[g]))
        units = sorted(groups[name], key=str)
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        val_units.add(units[int(rng.permutation(len(units))[0])])
    train = [s for s, u in zip(samples, unit_of) if u not in val_units]
    val = [s for s, u in zip(samples, unit_of) if u in val_units]
    return train, val


def read_sample_image(sample, video_reader=None):
    """The (H, W, 3) uint8 RGB image of a Sample: the image file, or frame `sample.frame` of
    its video (pass a shared VideoFrameReader to read many frames sequentially)."""
    if sample.frame is None:
        return read_image(sample.image_path)
    if video_reader is not None:
        return video_reader.read(sample.image_path, sample.frame)
    with VideoFrameReader() as reader:
        return reader.read(sample.image_path, sample.frame)


def iter_sample_images(samples):
    """Yield (sample, image) for samples in the given order; video frames are read with one
    shared VideoFrameReader, so samples sorted by (video, frame) read each video once."""
    with VideoFrameReader() as reader:
        for s in samples:
            yield s, read_sample_image(s, reader)
