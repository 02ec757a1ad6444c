"""What a tracking run is given (track_video, evaluate_tracking), as two small dataclasses.

Light on purpose (no NumPy, no model code): the `track` command builds them from its flags
(and its config's `track` section, fadenn_tf.config.TrackConfig) before it loads anything.
"""
from dataclasses import dataclass
from typing import Optional


@dataclass
class TrackOptions:
    """How every video is tracked.

    detector: a registered face-detector name ("default", "haar", ...), a BoxProvider
        callable, or None (no re-initialisation); detector_options: kwargs for a detector
        given by name (e.g. {"equalize": False}).
    failure_detector: a FailureDetector, the path of its .npz, "auto" (the one shipped
        beside the model file, as with pretrained / pretrained-fll; none for other models)
        or None (sanity checks only).
    failure_threshold: P(good fit) in (0, 1] below which a fit fails; None or 0 = the
        failure detector's own (0.5).
    shot_cuts: True (a ShotCutDetector with its defaults), a ShotCutDetector, or False.
    min_face: smallest landmark box side in pixels a fit may have.
    device: TensorFlow device of a Keras model (e.g. "/GPU:0"); backend: for a model given
        by path, as in fadenn_tf.load ("auto": the LiteRT copies shipped with pretrained /
        pretrained-fll, Keras for other models; "keras", "litert", "litert-int8").
    progress: a line every 10% of the frames with the ETA (a bar on a terminal).
    """
    detector: object = "default"
    detector_options: Optional[dict] = None
    failure_detector: object = "auto"
    failure_threshold: Optional[float] = None
    shot_cuts: object = True
    min_face: float = 8.0
    device: Optional[str] = None
    backend: str = "auto"
    progress: bool = False


@dataclass
class TrackScoring:
    """Which videos of a 300-VW layout evaluate_tracking scores, and how.

    category: 1, 2, 3 (or "1".."3"), "test" or "all" (fadenn_tf.data.datasets.index_300vw);
    videos: explicit video ids (override category). normalizer: NME normaliser (diagonal,
    box, interocular); nme_threshold: cut-off of AUC and failure rate (NME units).
    init_from_gt: start each video from the ground-truth landmark box of its first frame
    (re-initialisations still use the detector).
    """
    category: object = 3
    videos: Optional[list] = None
    normalizer: str = "diagonal"
    nme_threshold: float = 0.08
    init_from_gt: bool = False
