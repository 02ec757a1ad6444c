"""What prediction returns: one ImageResult per image, one FaceResult per face."""
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from fadenn_tf.noise_names import NOISE_NAMES


@dataclass
class FaceResult:
    """One face. landmarks (68, 2) float64 image pixels (0-based pixel centres); box
    (4,) float64 (x0, y0, x1, y1) edge coordinates; box_source "given" or "detector";
    noise_probs (5,) softmax over NOISE_NAMES or None; noise_class its argmax or None;
    fit_score: the failure detector's P(good fit) of these landmarks in [0, 1] (the
    Predictor's failure_detector, e.g. the one shipped with pretrained models), None
    without a failure detector; detector_score: the face detector's score of the box
    (e.g. UltraFace's face probability, 0-1), None for given boxes or a detector that
    gives none; status: "ok", or "rejected" when fit_score is below the Predictor's
    min_fit_score (the fit is most likely not on a face: ImageResult.rejected)."""
    landmarks: np.ndarray
    box: np.ndarray
    box_source: str
    noise_class: Optional[int] = None
    noise_probs: Optional[np.ndarray] = None
    fit_score: Optional[float] = None
    detector_score: Optional[float] = None
    status: str = "ok"

    @property
    def noise_name(self):
        """Name of noise_class (fadenn_tf.noise.NOISE_NAMES), or None."""
        if self.noise_class is None:
            return None
        return NOISE_NAMES[self.noise_class]

    def to_dict(self, landmarks=True):
        d = {"box": [float(v) for v in self.box], "box_source": self.box_source,
             "noise_class": self.noise_class, "noise_name": self.noise_name,
             "noise_probs": None if self.noise_probs is None
             else [float(v) for v in self.noise_probs],
             "fit_score": None if self.fit_score is None else round(float(self.fit_score), 4),
             "detector_score": None if self.detector_score is None
             else round(float(self.detector_score), 4), "status": self.status}
        if landmarks:
            d["landmarks"] = np.asarray(self.landmarks).round(3).tolist()
        return d


@dataclass
class ImageResult:
    """Result for one image: `faces` (largest / first given first, possibly empty) and the
    first face's fields as shortcuts (None when no face was found). `rejected`: fits whose
    fit_score fell below the Predictor's min_fit_score (status "rejected"), kept apart:
    they are not counted as faces.

    timing: seconds spent on this image: "detect", "crop", "model" (its share of the batch
    by number of faces), "total" (their sum).
    """
    faces: List[FaceResult] = field(default_factory=list)
    rejected: List[FaceResult] = field(default_factory=list)
    image_shape: tuple = ()
    timing: dict = field(default_factory=dict)

    @property
    def found(self):
        return bool(self.faces)

    def _first(self, name):
        return getattr(self.faces[0], name) if self.faces else None

    @property
    def landmarks(self):
        return self._first("landmarks")

    @property
    def box(self):
        return self._first("box")

    @property
    def box_source(self):
        return self._first("box_source")

    @property
    def noise_class(self):
        return self._first("noise_class")

    @property
    def noise_name(self):
        return self._first("noise_name")

    @property
    def noise_probs(self):
        return self._first("noise_probs")
