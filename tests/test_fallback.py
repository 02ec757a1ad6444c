"""One-face mode: when the fit in the detector's first box is rejected (fit_score below the
floor), the next detector box is fitted instead of answering "no face"."""
import numpy as np
import pytest

import fadenn_tf
from fadenn_tf import pretrained
from fadenn_tf.data.cache import resolve_data
from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.datasets import open_dataset
from fadenn_tf.data.images import read_image
from fadenn_tf.inference.fallback import MAX_FALLBACKS

pytestmark = pytest.mark.skipif(pretrained.litert_path("pretrained-fll") is None,
                                reason="no shipped LiteRT copy of pretrained-fll")


class _Boxes:
    """A detector answering fixed boxes with scores (UltraFace's `last_scores` protocol),
    counting its calls."""

    def __init__(self, boxes, scores):
        self.boxes, self.scores = np.asarray(boxes, np.float64), np.asarray(scores)

    def __call__(self, image):
        self.last_scores = self.scores
        return self.boxes.copy()


@pytest.fixture(scope="module")
def face():
    samples, _ = open_dataset(resolve_data(None), split="test")
    s = samples[0]
    return read_image(s.image_path), landmark_box(s.landmarks)


def _empty(k, box):
    """A box with no face: k-th patch along the image's top edge, half the face's width."""
    w = 0.5 * (box[2] - box[0])
    x = 2.0 + k * 0.3 * w
    return np.array([x, 2.0, x + w, 2.0 + w])


def test_rejected_first_box_falls_back_to_the_next(face):
    image, box = face
    det = _Boxes([_empty(0, box), box], [0.95, 0.80])
    pred = fadenn_tf.load("pretrained-fll", detector=det)
    r = pred.predict(image)[0]
    assert r.found and len(r.faces) == 1
    np.testing.assert_allclose(r.box, box)
    assert r.faces[0].status == "ok" and r.faces[0].detector_score == pytest.approx(0.80)
    assert [f.status for f in r.rejected] == ["rejected"]
    np.testing.assert_allclose(r.rejected[0].box, _empty(0, box))
    assert r.timing["model"] > 0
    # without a floor nothing is rejected: the first box is the answer, as before
    kept = pred.predict(image, min_fit_score=0)[0]
    np.testing.assert_allclose(kept.box, _empty(0, box))
    # the fallback's fit gets the second pass too (refine "auto": a detector's box): the
    # fit in the landmark box of the single-pass fit
    once = pred.predict(image, refine=False)[0]
    np.testing.assert_allclose(once.box, box)
    again = pred.predict(image, boxes=landmark_box(once.landmarks), min_fit_score=0,
                         refine=False)[0]
    np.testing.assert_allclose(r.landmarks, again.landmarks, atol=1e-4)
    assert np.abs(r.landmarks - once.landmarks).max() > 1e-3
    # all_faces fits every box once: no fallback involved
    every = pred.predict(image, all_faces=True)[0]
    assert len(every.faces) == 1 and len(every.rejected) == 1


def test_fallback_stops_after_max_fallbacks_and_reports_every_rejected_fit(face):
    image, box = face
    empties = [_empty(k, box) for k in range(MAX_FALLBACKS + 1)]
    det = _Boxes(empties + [box], np.linspace(0.99, 0.75, len(empties) + 1))
    r = fadenn_tf.load("pretrained-fll", detector=det).predict(image)[0]
    assert not r.found and r.landmarks is None     # the face was the 6th box: not tried
    assert len(r.rejected) == MAX_FALLBACKS + 1
    assert all(f.status == "rejected" for f in r.rejected)
    # the same photo with the face within reach is found
    det.boxes, det.scores = np.vstack([empties[:2], box[None]]), det.scores[:3]
    r = fadenn_tf.load("pretrained-fll", detector=det).predict(image)[0]
    assert r.found and len(r.rejected) == 2
