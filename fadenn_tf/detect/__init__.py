"""Face boxes for images without a given box: a pluggable box-provider interface.

Box convention (the same as fadenn_tf.data.crop): a box is (x0, y0, x1, y1) float64 in
pixel-EDGE coordinates, pixel i covers [i, i + 1] and the image covers [0, W] x [0, H]. The
face box the landmark localiser expects is the tight 68-point landmark box (min/max of the
pixel-centre landmarks, + 0.5), which is what the FLL was trained on.

A box provider is any callable `provider(image_rgb_uint8) -> np.ndarray (K, 4) float64`:
boxes clipped to the image, boxes of zero area dropped, the preferred face first (largest
area first for the classic detectors; UltraFace puts its confident boxes first), shape
(0, 4) when there is no face.

Providers here:
- UltraFaceDetector (the default, "ultraface"; "ultraface-slim" for the slim file): a 1 MB
  CNN (MIT licence, shipped in fadenn_tf/detect/models) run by LiteRT on the whole image
  resized to about 320x240; every box has a score (face probability, `last_scores` after a
  call, `detect(image)` -> (boxes, scores)). Boxes mapped by ULTRAFACE_TO_LANDMARK_BOX.
- HaarFaceDetector: OpenCV's packaged frontal-face Haar cascade (needs opencv-python-headless
  4.x: OpenCV 5 has no CascadeClassifier and ships no cascade files). Its boxes are mapped to
  the landmark-box convention by HAAR_TO_LANDMARK_BOX (see there how it was measured).
- ProfileFaceDetector: OpenCV's profile-face cascade on the image and its mirror image.
- DlibHogDetector: dlib's HOG detector (the optional extra: pip install 'fadenn_tf[dlib]';
  listed only when dlib can be imported).
- FallbackDetector: several detectors in order (the first that finds a face answers).
- FixedBoxes: boxes given by the user (e.g. one image's entry of load_boxes_file).
- LandmarkBoxProvider: the landmark box of the previous estimate (model-free tracking).

How to plug your own detector
-----------------------------
Write a callable taking an (H, W, 3) uint8 RGB image and returning (K, 4) boxes
(x0, y0, x1, y1) in the landmark-box convention above (if your detector's boxes differ, fit a
correction with `fit_box_correction` on a few annotated images and apply it with
`apply_box_correction`), then register a factory:

    from fadenn_tf import detect
    class MyDetector:
        def __init__(self, threshold=0.5): ...
        def __call__(self, image):            # (H, W, 3) uint8 RGB
            boxes = ...                        # (K, 4) float, best first
            return detect.clip_boxes(boxes, image.shape)
    detect.register_detector("mine", MyDetector)
    provider = detect.get_detector("mine", threshold=0.7)

`get_detector("haar", **kwargs)` gives the built-in Haar one, `get_detector("default")` the
default (DEFAULT_DETECTOR, "ultraface"), "haar+profile" a chain (the profile cascade runs when
the frontal one finds nothing). A provider may also set `last_scores` ((K,) scores of the
boxes it just returned, same order): the Predictor reports them as FaceResult.detector_score.
"""
from fadenn_tf.data.crop import landmark_box  # the one box convention (re-exported)
from fadenn_tf.detect.boxes import (BoxProvider, FallbackDetector, FixedBoxes,
                                    LandmarkBoxProvider, apply_box_correction, as_boxes,
                                    clip_boxes, empty_boxes, fit_box_correction, parse_box,
                                    sort_boxes)
from fadenn_tf.detect.boxes_file import load_boxes_file, lookup_boxes
from fadenn_tf.detect.cascades import (DEFAULT_CASCADE, DLIB_DEFAULTS, DLIB_TO_LANDMARK_BOX,
                                       HAAR_DEFAULTS, HAAR_TO_LANDMARK_BOX, PROFILE_CASCADE,
                                       PROFILE_DEFAULTS, PROFILE_TO_LANDMARK_BOX,
                                       DetectorUnavailableError, DlibHogDetector,
                                       HaarFaceDetector, ProfileFaceDetector, dlib_available)
from fadenn_tf.detect.registry import (_REGISTRY, DEFAULT_DETECTOR, add_detector_arguments,
                                       available_detectors, default_detector_name,
                                       detector_kwargs_from_args, get_detector,
                                       register_detector)
from fadenn_tf.detect.ultraface import (ULTRAFACE_DEFAULTS, ULTRAFACE_TO_LANDMARK_BOX,
                                        UltraFaceDetector, ultraface_path)
from fadenn_tf.detect.ultraface_decode import decode_boxes, make_anchors, nms

__all__ = [
    "landmark_box", "BoxProvider", "FallbackDetector", "FixedBoxes", "LandmarkBoxProvider",
    "apply_box_correction", "as_boxes", "clip_boxes", "empty_boxes", "fit_box_correction",
    "parse_box", "sort_boxes", "load_boxes_file", "lookup_boxes", "DEFAULT_CASCADE", "DLIB_DEFAULTS",
    "DLIB_TO_LANDMARK_BOX", "HAAR_DEFAULTS", "HAAR_TO_LANDMARK_BOX", "PROFILE_CASCADE",
    "PROFILE_DEFAULTS", "PROFILE_TO_LANDMARK_BOX", "DetectorUnavailableError",
    "DlibHogDetector", "HaarFaceDetector", "ProfileFaceDetector", "dlib_available",
    "_REGISTRY", "DEFAULT_DETECTOR", "add_detector_arguments",
    "available_detectors", "default_detector_name", "detector_kwargs_from_args",
    "get_detector", "register_detector", "ULTRAFACE_DEFAULTS", "ULTRAFACE_TO_LANDMARK_BOX",
    "UltraFaceDetector", "ultraface_path", "decode_boxes", "make_anchors", "nms",
]
