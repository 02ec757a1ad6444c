"""Model-free face tracking on videos (paper section IV-D) and its 300-VW evaluation.

records (FrameRecord, TrackResult), checks (sanity checks, shot cuts), tracker (Tracker),
video (track_video: a file -> .pts, overlay, log), evaluation (300-VW NME/AUC/FR), options
(TrackOptions, TrackScoring: what a run is given). The fitting-failure detector the
tracker checks fits with lives in fadenn_tf.fitcheck (Predictor scores fits with it too).

Protocol, per frame t (`track_video`):
1. If frame t-1 gave an accepted estimate, the box of frame t is the tight landmark box of
   those landmarks (source "tracked"): no detector runs.
2. The landmarks are fitted in that box (the FLL crop: box grown to 2x, clipped, resized) and
   checked: sanity checks (finite points, at most half of them outside the frame, a landmark
   box of at least `min_face` pixels with an aspect ratio <= 2, a size within 0.5x-2x of
   the box it was fitted in) and, when a failure detector is given, its probability of a
   good fit (fadenn_tf.fitcheck.detector, logistic regression over patches around the
   landmarks) must be >= its threshold.
3. A shot cut (ShotCutDetector: histogram distance or frame difference to the previous
   frame) drops the track before step 1.
4. On a failed check, a cut, at the first frame, or when the face was lost, the face
   detector re-initialises (source "detector"; at the first frame a given --init-box /
   --init-pts is used instead, source "given"), and its fit is checked the same way. A fit
   that fails the check, or a detector that finds nothing, marks the frame "lost" (no
   landmarks, no .pts): a face is never reported where the check says there is none. The
   next frame asks the detector again.
Each frame's status is "tracked", "re-detected" or "lost"; the log and the printed summary
count them (they sum to the number of frames).

The shipped models (pretrained, pretrained-fll) carry a failure detector trained with them
on real faces (fadenn_tf/pretrained/<model>/failure_detector.npz); it is used by default
(failure_detector="auto": a failure_detector.npz beside the model file). Without one only
the sanity checks catch failures (the log says so). Train one for your model with
    python -m fadenn_tf.train_failure_detector --model M --out fd.npz [--data DIR]
"""
