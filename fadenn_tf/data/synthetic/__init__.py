"""Procedural synthetic faces with exact 68-point ground truth (ibug / 300-W markup).

What it is: a toy renderer for trying every command, tests, demos and sanity checks of
training. A model trained on it is NOT a model for real faces.

face_model (3-D shape, pose, projection), sampling (random parameters), rendering (OpenCV
drawing -> image + landmarks), video (clips in the 300-VW layout), dataset (the 300-W /
300-VW folders on disk). fadenn_tf.data.cache keeps the default data set.

Arrays: images (H, W, 3) uint8 RGB; landmarks (68, 2) float64 0-based pixel-centre (x, y).
"""
from fadenn_tf.data.synthetic.dataset import (DATASET_VERSION, TEST_FOLDERS, TRAIN_FOLDERS,
                                              VIDEO_IDS, SynthSpec, generate_dataset,
                                              make_still, sample_rng, still_jobs)
from fadenn_tf.data.landmarks68 import flip_landmarks
from fadenn_tf.data.synthetic.face_model import model_points, rotation
from fadenn_tf.data.synthetic.rendering import (_background, _other_face, draw_sample,
                                                jpeg_roundtrip, render_face, render_speed)
from fadenn_tf.data.synthetic.sampling import (merge_params, mirror_params,
                                               sample_params)

__all__ = ["DATASET_VERSION", "TEST_FOLDERS", "TRAIN_FOLDERS", "VIDEO_IDS", "SynthSpec",
           "generate_dataset",
           "make_still", "sample_rng", "still_jobs", "model_points", "rotation", "draw_sample",
           "jpeg_roundtrip", "render_face", "render_speed", "flip_landmarks", "merge_params",
           "mirror_params", "sample_params", "_background", "_other_face"]
