"""The record every dataset indexer yields and every pipeline consumes."""
from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One annotated face.

    image_path: image file (or video file for 300-VW frames, with `frame` set).
    landmarks: (N, 2) float64, 0-based pixel-centre (x, y) in the image; None if unannotated.
    pts_path: the .pts the landmarks came from, or None.
    subset: where it came from inside the dataset, e.g. "helen/testset", "ibug", "menpo".
    frame: 0-based frame index for video samples, else None.
    box: optional face box (x0, y0, x1, y1) in image pixels; None means "use the landmark box".
    """
    image_path: str
    landmarks: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    pts_path: Optional[str] = None
    subset: str = ""
    frame: Optional[int] = None
    box: Optional[tuple] = None
