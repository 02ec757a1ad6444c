"""What a `degrade` run writes and how (degrade_dataset's options), with no heavy import:
the `degrade` command builds it (and lists IMAGE_FORMATS in --help) before TensorFlow loads."""
from dataclasses import dataclass
from typing import Optional

from fadenn_tf.config import REFERENCE_SIZE

IMAGE_FORMATS = {"png": ".png", "jpg": ".jpg"}   # --image-format: file extension


@dataclass
class DegradeOptions:
    """Options of fadenn_tf.evaluation.degraded.degrade_dataset (the `degrade` flags).

    conditions: [(type, level)] (fadenn_tf.noise), None = the 12 noisy ones; clean is dropped.
    seed: noise seed (each image's derives from it and its path). format: dataset format
    (auto, 300w, 300vw, menpo, folder); split: only this split (None: every annotated image).
    full_image: degrade whole images (always for 300-VW videos) instead of reference crops of
    reference_size pixels a side (32..1024). image_format: a key of IMAGE_FORMATS; quality:
    JPEG quality 1..100; keep_format: full-image mode keeps each image's format.
    max_images: at most this many images, evenly spread (0 = all).
    workers: processes for still images (0 = min(2, CPU cores)). progress: a bar on a
    terminal, else a line every log_every items (None: every 10% of them).
    resume: keep the items an interrupted run with the same settings finished, do the rest;
    overwrite: write every item again.
    """
    conditions: Optional[list] = None
    seed: int = 0
    format: str = "auto"
    split: Optional[str] = None
    full_image: bool = False
    reference_size: int = REFERENCE_SIZE
    image_format: str = "png"
    quality: int = 95
    keep_format: bool = False
    max_images: int = 0
    workers: int = 0
    progress: bool = False
    log_every: Optional[int] = None
    resume: bool = False
    overwrite: bool = False
