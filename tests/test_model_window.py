"""A model that crops tighter than the reference crop (config model.crop_scale below 2): the
noise protocol stays on the 2x reference crop and the model is given its WINDOW of it
(noise.model_windows), in training, training-time validation, `evaluate` and predictions.

Every check compares against the direct crop of the image at that crop_scale
(data.crop.CropTransform), the crop a user's `predict` makes.
"""
import json

import numpy as np
import pytest

from fadenn_tf import models as M
from fadenn_tf import noise
from fadenn_tf.config import AugmentConfig, ExperimentConfig
from fadenn_tf.data.augment import flip_points
from fadenn_tf.data.crop import CropTransform
from fadenn_tf.data.pipeline import load_eval_data, load_train_data
from fadenn_tf.errors import ConfigError
from fadenn_tf.evaluation import scoring
from fadenn_tf.evaluation.engine import EvalSet, evaluate, model_entry
from fadenn_tf.inference.model import load_any
from fadenn_tf.training.stream import StreamOptions, clean_work_size, make_train_dataset

from test_crop_scale import SIZE, _copy, _shape_model
from test_predict import crop_shape

R = 64           # reference side of these tests
S = 32           # model side
SCALE = 1.4


def _gap(a, b):
    """Mean absolute difference of two [..., S, S, 3] image batches on 4x4 block means (the
    fixture photos are textured: resampling moves single pixels, not the blocks)."""
    def coarse(x):
        x = np.asarray(x, np.float32)
        return x.reshape(x.shape[:-3] + (S // 4, 4, S // 4, 4, 3)).mean(axis=(-4, -2))
    return float(np.abs(coarse(a) - coarse(b)).mean())


@pytest.fixture(scope="module")
def ref(faces):
    return load_eval_data(faces, R)


@pytest.fixture(scope="module")
def direct(faces):
    """The crops a model cropping SCALE x the box takes straight from the images."""
    return load_eval_data(faces, S, scale=SCALE)


def test_windows_are_the_tight_crop_inside_the_reference_crop(ref, direct):
    assert ref.boxes.shape == (len(ref), 4)
    for i in range(len(ref)):        # the box in crop coordinates is the box mapped there
        box = direct.samples[i].box
        box = box if box is not None else np.concatenate(
            [direct.samples[i].landmarks.min(0), direct.samples[i].landmarks.max(0)]) + 0.5
        np.testing.assert_allclose(ref.boxes[i], ref.transform(i).apply_box(box), atol=1e-9)
    b = next(iter(scoring.make_eval_dataset(ref, S, len(ref), crop_scale=SCALE)))
    np.testing.assert_allclose(b["landmarks"].numpy(), direct.landmarks, atol=2e-3)
    # the same pixels up to resampling (a bilinear window of the area-filtered 2x crop):
    # far closer to the direct crop than the whole reference crop is (textured fixtures)
    wide = next(iter(scoring.make_eval_dataset(ref, S, len(ref))))         # 2x: no window
    assert "window" not in wide
    assert _gap(b["image"], direct.images) < 0.3 * _gap(wide["image"], direct.images)
    # points predicted in the window come back to the reference crop exactly
    back = noise.reference_points(b["landmarks"].numpy(), S, R, b["window"].numpy())
    np.testing.assert_allclose(back, ref.landmarks, atol=2e-3)


@pytest.mark.parametrize("noisy", [False, True])
def test_training_stream_gives_the_window(faces, direct, noisy):
    """No augmentation: the stream's landmarks are the direct crop's, clean (cropped at
    clean_work_size) and noisy (the reference side, clean_prob 1: no noise drawn)."""
    aug = AugmentConfig(rotation_deg=0, flip=False, occlusion_prob=0, box_jitter="none")
    work = R if noisy else clean_work_size(S, SCALE)
    assert clean_work_size(S, SCALE) == 46 and clean_work_size(S, 2.0) == S
    data = load_train_data(faces, work)
    opt = StreamOptions(augment=aug, noise=noisy, clean_prob=1.0, reference_size=R,
                        crop_scale=SCALE)
    b = next(iter(make_train_dataset(data, S, 6, opt)))
    rows = b["index"].numpy()
    np.testing.assert_allclose(b["landmarks"].numpy(), direct.landmarks[rows], atol=2e-3)
    assert _gap(b["image"], direct.images[rows]) < \
        0.5 * _gap(b["image"], direct.images[rows][:, :, ::-1])


def test_a_flipped_window_is_the_flipped_crop(faces, direct):
    """The window follows the augmentation: a flip mirrors the face box too (the box centre
    rides with the points), so a flipped sample's points are the mirrored direct crop's
    (the image goes through the same window: test_training_stream_gives_the_window)."""
    aug = AugmentConfig(rotation_deg=0, flip=True, occlusion_prob=0, box_jitter="none")
    data = load_train_data(faces, clean_work_size(S, SCALE))
    seen = set()
    for step in range(4):
        b = next(iter(make_train_dataset(data, S, 6, StreamOptions(
            augment=aug, noise=False, crop_scale=SCALE, seed=step))))
        for k, row in enumerate(b["index"].numpy()):
            plain, mirrored = direct.landmarks[row], flip_points(direct.landmarks[row][None],
                                                                  S).numpy()[0]
            got = b["landmarks"].numpy()[k]
            flipped = np.abs(got - mirrored).max() < 2e-2
            assert flipped or np.abs(got - plain).max() < 2e-3
            seen.add(flipped)
    assert seen == {True, False}


def test_crop_scale_config_bounds():
    cfg = ExperimentConfig()
    assert cfg.model.crop_scale == 2.0
    for bad in (2.4, 1.0, 0.5):
        cfg.model.crop_scale = bad
        with pytest.raises(ConfigError, match="model.crop_scale"):
            cfg.validate("test.yaml")
    with pytest.raises(ValueError, match="more than 1 and at most 2"):
        noise.uses_window(2.4)


def test_evaluate_and_predict_crop_a_tight_model_the_same_way(faces, tmp_path):
    """A model predicting a fixed crop shape, saved with crop_scale 1.4: `evaluate` (its
    window of each noisy reference crop) and `predict` on the image (the direct 1.4 crop)
    put its points at the same image positions: the fixed shape mapped back through the
    1.4 crop of the face box."""
    path = tmp_path / "m.keras"
    M.save_model(_shape_model(), path, crop_scale=SCALE)
    assert json.loads(path.with_suffix(".json").read_text())["crop_scale"] == SCALE
    model = load_any(path)
    assert model.crop_scale == SCALE
    label = model_entry(model).label
    ev = evaluate([model_entry(model)], EvalSet(faces, "fixture", faces[0].image_path,
                                                "folder", "all"), [(0, 0), (2, 3)],
                  crop_size=R)
    truth = np.stack([s.landmarks for s in faces])
    for i, s in enumerate(faces):
        image = np.asarray(__import__("cv2").imread(str(s.image_path))[..., ::-1])
        box = np.concatenate([s.landmarks.min(0), s.landmarks.max(0)]) + 0.5
        want = CropTransform.from_box(box, image.shape[:2], SIZE, scale=SCALE).invert(
            crop_shape(SIZE))
        np.testing.assert_allclose(model.fit_box(image, box)[0], want, atol=1e-3)
        diag = np.hypot(*np.ptp(s.landmarks, axis=0))
        nme = np.linalg.norm(want - truth[i], axis=1).mean() / diag
        for cond in ("clean", "blur-3"):     # noise does not move a constant shape
            assert ev.errors[label][cond]["diagonal"][i] == pytest.approx(nme, rel=1e-4)
    # the same model read as cropping 2x puts the shape elsewhere: the check is not vacuous
    wide = load_any(_copy(path, tmp_path / "wide", crop_scale=2.0))
    ev2 = evaluate([model_entry(wide)], EvalSet(faces, "fixture", faces[0].image_path,
                                                "folder", "all"), [(0, 0)], crop_size=R)
    assert abs(ev2.errors[model_entry(wide).label]["clean"]["diagonal"].mean()
               - ev.errors[label]["clean"]["diagonal"].mean()) > 0.02


def test_from_reference_takes_the_window(saved_tight):
    refs = np.random.default_rng(5).uniform(0, 255, (2, 40, 40, 3)).astype(np.float32)
    boxes = np.array([[10.0, 10.0, 30.0, 30.0], [0.0, 4.0, 20.0, 30.0]], np.float32)
    got = saved_tight.from_reference(refs, boxes)
    want = noise.to_model_input(refs, SIZE, noise.model_windows(boxes, 40, SCALE)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="its window needs the face boxes"):
        saved_tight.from_reference(refs)


@pytest.fixture()
def saved_tight(tmp_path):
    path = tmp_path / "t.keras"
    M.save_model(_shape_model(), path, crop_scale=SCALE)
    return load_any(path)
