"""One-face mode's fallback: when the fit in the detector's first box is rejected (its
fit_score is below the floor: most likely not a face), the next boxes the detector found
are fitted in turn (the model's fit_boxes), and the first accepted fit is the image's face
instead of "no face"."""
import time

from fadenn_tf.inference.refine import refit

MAX_FALLBACKS = 4   # further detector boxes tried per image, in the detector's order


def fall_back(predictor, prepared, results, floor, refine=False, limit=MAX_FALLBACKS):
    """For each image of `results` (one ImageResult per _Prepared of `prepared`, from
    Predictor.run) whose fits were all rejected and whose detector found more boxes
    (_Prepared.spare, one-face mode only): fit at most `limit` of them, one model call
    each, in the detector's order, until one is accepted. The accepted fit becomes the
    image's face; the rejected ones are added to ImageResult.rejected. refine: each fit
    gets the second pass (inference.refine), as in Predictor.run. The time goes to
    timing["model"] and timing["total"]. Modifies `results` in place."""
    for p, r in zip(prepared, results):
        if r.faces or not r.rejected or p.spare is None:
            continue
        boxes, scores = p.spare
        t0 = time.perf_counter()
        for k in range(min(int(limit), len(boxes))):
            try:
                fit = predictor.model.fit_boxes(p.image, boxes[k:k + 1])
            except ValueError:        # a box with no area inside the image
                continue
            if refine:
                fit = refit(predictor.model, [p.image], [fit])[0]
            face = predictor.face(p.image, fit.landmarks[0],
                                  None if fit.noise_probs is None else fit.noise_probs[0],
                                  boxes[k], p.source, None if scores is None else scores[k],
                                  floor)
            (r.faces if face.status == "ok" else r.rejected).append(face)
            if face.status == "ok":
                break
        dt = time.perf_counter() - t0
        r.timing["model"] += dt
        r.timing["total"] += dt
