"""Prediction API and CLI: mixed image sizes, given/detected boxes, no-face images, outputs.

The model is a REAL tiny Keras model saved as .keras: a zero-kernel Dense whose bias is a
chosen crop shape, so whatever the crop, it predicts that shape in crop pixels. The
predicted IMAGE landmarks must then be that shape mapped back through each image's own
crop transform, which checks crop -> batch -> uncrop for every image independently.
"""
import json

import cv2
import keras
import numpy as np
import pytest

import fadenn_tf
from fadenn_tf import detect
from fadenn_tf.data.crop import CropTransform
from fadenn_tf.data.pts import read_pts
from fadenn_tf.inference.predictor import to_rgb_uint8
from fadenn_tf.predict import main

from fixtures import UNIT_FACE68, face_image, face_landmarks, write_image

SIZE = 16
LOGITS = np.array([0.1, 0.3, 2.0, -1.0, 0.5], np.float32)


def crop_shape(size=SIZE):
    """68 points whose landmark box (edge coords) is exactly the centre half of the crop:
    the fixed point of box -> 2x region -> crop."""
    u = UNIT_FACE68 - UNIT_FACE68.min(axis=0)
    u = u / u.max(axis=0)                             # [0, 1] in x and y
    lo, hi = size / 4 - 0.5, 3 * size / 4 - 0.5       # centres; landmark_box adds 0.5
    return (lo + u * (hi - lo)).astype(np.float32)


def constant_shape_model(path, shape, size=SIZE, logits=None):
    """Save a real Keras model predicting `shape` (68, 2) crop pixels for any input.
    logits given: a FADeNN-style dict model with a noise classifier of those logits."""
    flat = np.concatenate([shape[:, 0], shape[:, 1]]).astype(np.float32)
    inp = keras.Input((size, size, 3))
    g = keras.layers.GlobalAveragePooling2D()(inp)
    out = keras.layers.Dense(136, kernel_initializer="zeros",
                             bias_initializer=keras.initializers.Constant(flat))(g)
    if logits is None:
        model = keras.Model(inp, out)
    else:
        pts = keras.layers.Permute((2, 1))(keras.layers.Reshape((2, 68))(out))
        z = keras.layers.Dense(5, kernel_initializer="zeros", name="classifier",
                               bias_initializer=keras.initializers.Constant(logits))(g)
        probs = keras.layers.Softmax()(z)
        den = keras.layers.Activation("linear")(inp)
        model = keras.Model(inp, {"landmarks": pts, "noise_probs": probs, "denoised": den})
    model.save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    shape = crop_shape()
    return {"shape": shape,
            "fll": constant_shape_model(d / "fll.keras", shape),
            "fadenn": constant_shape_model(d / "fadenn.keras", shape, logits=LOGITS)}


def expected(box, hw, shape):
    return CropTransform.from_box(box, hw, SIZE).invert(shape.astype(np.float64))


class ContentDetector:
    """A real (if simple) detector: the bounding box of the pixels that differ from the
    top-left pixel's colour; nothing on a uniform image. split=True also returns the left
    half of that box as a second, smaller face."""

    def __init__(self, split=False):
        self.split = split

    def __call__(self, image):
        diff = np.abs(image.astype(np.int16) - image[0, 0].astype(np.int16)).max(axis=2) > 10
        ys, xs = np.nonzero(diff)
        if len(xs) == 0:
            return detect.empty_boxes()
        b = np.array([[xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0]])
        if self.split:
            b = np.vstack([b, [b[0, 0], b[0, 1], (b[0, 0] + b[0, 2]) / 2, b[0, 3]]])
        return detect.clip_boxes(detect.sort_boxes(b), image.shape)


def _face(hw, seed, bg=30):
    lm = face_landmarks(hw, seed)
    return face_image(hw, lm, seed, background=bg), lm


def test_mixed_sizes_given_boxes_land_in_each_images_coordinates(models):
    p = fadenn_tf.load(models["fadenn"], detector=None)
    assert p.size == SIZE and p.has_classifier
    imgs = [np.zeros((60, 80, 3), np.uint8), np.zeros((150, 90, 3), np.uint8),
            np.zeros((200, 320, 3), np.uint8)]
    boxes = [[10, 12, 50, 48], [0, 100, 60, 150],       # second: region clipped to 90 x 75
             [100.5, 40.25, 220.0, 170.0]]
    res = p.predict(imgs, boxes=boxes, batch_size=2)    # 3 crops over two model calls
    assert len(res) == 3
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum()
    for r, img, box in zip(res, imgs, boxes):
        assert r.found and r.box_source == "given" and len(r.faces) == 1
        assert r.image_shape == img.shape
        np.testing.assert_allclose(r.landmarks, expected(box, img.shape[:2], models["shape"]),
                                   atol=1e-3)
        np.testing.assert_allclose(r.box, box)
        np.testing.assert_allclose(r.noise_probs, probs, atol=1e-5)
        assert r.noise_class == 2 and r.noise_name == "blur"
        assert set(r.timing) == {"detect", "crop", "model", "total"}
    # the clipped region maps x and y with different scales: not a translated copy
    a = res[1].landmarks
    ext = a.max(0) - a.min(0)
    assert ext[0] / ext[1] == pytest.approx(90 / 75, rel=1e-3)


def test_one_image_batch_array_and_fll_model(models):
    p = fadenn_tf.load(models["fll"], detector=None)
    assert not p.has_classifier
    img = np.zeros((100, 120, 3), np.uint8)
    box = [30, 20, 80, 75]
    one = p.predict(img, boxes=box)
    assert isinstance(one, list) and len(one) == 1
    assert one[0].noise_probs is None and one[0].noise_class is None
    np.testing.assert_allclose(one[0].landmarks, expected(box, (100, 120), models["shape"]),
                               atol=1e-3)
    batch = np.zeros((2, 100, 120, 3), np.uint8)
    two = p.predict(batch, boxes=np.array([box, [0, 0, 120, 100]], float))
    np.testing.assert_allclose(two[0].landmarks, one[0].landmarks, atol=1e-6)
    assert not np.allclose(two[1].landmarks, one[0].landmarks)
    # several given boxes for one image: one face each, in the given order
    multi = p.predict(img, boxes=[box, [0, 0, 120, 100]])[0]
    assert len(multi.faces) == 2
    np.testing.assert_allclose(multi.faces[1].landmarks, two[1].landmarks, atol=1e-6)
    # [] means no face
    assert p.predict(img, boxes=[])[0].landmarks is None


def test_detector_boxes_no_face_and_all_faces(models):
    p = fadenn_tf.load(models["fadenn"], detector=ContentDetector())
    face, _ = _face((90, 110), 1)
    blank = np.full((70, 70, 3), 30, np.uint8)
    res = p.predict([face, blank, face[:60]])
    assert res[0].found and res[0].box_source == "detector"
    box = ContentDetector()(face)[0]
    np.testing.assert_allclose(res[0].landmarks, expected(box, face.shape[:2], models["shape"]),
                               atol=1e-3)
    assert not res[1].found and res[1].landmarks is None and res[1].faces == []
    assert res[1].box is None and res[1].noise_probs is None
    assert res[2].found and res[2].image_shape == (60, 110, 3)
    # per-image entries: None = detector, a box = given
    mixed = p.predict([face, face], boxes=[None, [5, 5, 50, 50]])
    assert [r.box_source for r in mixed] == ["detector", "given"]
    # largest face only by default; every face with all_faces
    p2 = fadenn_tf.load(models["fadenn"], detector=ContentDetector(split=True))
    assert len(p2.predict(face)[0].faces) == 1
    faces = p2.predict(face, all_faces=True)[0].faces
    assert len(faces) == 2
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas[0] > areas[1]


def test_default_detector_on_blank_image_gives_no_face_result(models):
    p = fadenn_tf.load(models["fll"])               # default detector: UltraFace
    res = p.predict(np.full((120, 160, 3), 128, np.uint8))
    assert len(res) == 1 and res[0].landmarks is None and res[0].box_source is None


def test_bgr_and_input_checks(models):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200
    bgr = to_rgb_uint8(rgb, "bgr")
    assert bgr[0, 0].tolist() == [0, 0, 200]
    assert to_rgb_uint8(rgb[..., 0]).shape == (4, 5, 3)            # gray -> 3 channels
    assert to_rgb_uint8(np.dstack([rgb, rgb[..., :1]])).shape == (4, 5, 3)  # alpha dropped
    with pytest.raises(ValueError, match="color"):
        to_rgb_uint8(rgb, "hsv")
    with pytest.raises(ValueError, match="uint8"):
        to_rgb_uint8(rgb.astype(np.float32))
    p = fadenn_tf.load(models["fll"], detector=None)
    with pytest.raises(ValueError, match="image 1"):
        p.predict([rgb, np.zeros((20, 20, 3), np.uint8)], boxes=[[0, 0, 4, 4], [40, 40, 60, 60]])
    with pytest.raises(ValueError, match="one entry per image"):
        p.predict([rgb, rgb], boxes=[[0, 0, 4, 4]])
    with pytest.raises(ValueError, match="no face detector"):
        p.predict(rgb)


def test_colour_order_reaches_the_detector(models):
    seen = []

    def red_detector(image):      # a face is wherever the image is red (RGB order)
        seen.append(image[0, 0].tolist())
        m = (image[..., 0] > 150) & (image[..., 2] < 50)
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            return detect.empty_boxes()
        return np.array([[xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0]])
    p = fadenn_tf.load(models["fll"], detector=red_detector)
    img_rgb = np.zeros((50, 50, 3), np.uint8)
    img_rgb[10:30, 10:30] = (255, 0, 0)
    img_bgr = img_rgb[..., ::-1].copy()
    assert p.predict(img_bgr, color="bgr")[0].found
    assert not p.predict(img_bgr)[0].found        # read as RGB the square is blue
    assert p.predict(img_rgb)[0].found


def test_predict_file(models, tmp_path):
    face, _ = _face((80, 100), 3)
    path = write_image(tmp_path / "f.png", face)
    p = fadenn_tf.load(models["fll"], detector=ContentDetector())
    r = p.predict_file(path)
    np.testing.assert_allclose(r.landmarks, p.predict(face)[0].landmarks, atol=1e-9)


@pytest.fixture
def content_detector_registered():
    detect.register_detector("content-test", ContentDetector, overwrite=True)
    detect.register_detector("content-split-test", lambda: ContentDetector(split=True),
                             overwrite=True)
    yield "content-test"
    detect._REGISTRY.pop("content-test", None)
    detect._REGISTRY.pop("content-split-test", None)


def test_cli_writes_pts_summary_overlays_and_survives_bad_images(
        models, tmp_path, capsys, content_detector_registered):
    imgs = tmp_path / "in"
    a, _ = _face((90, 120), 4)
    b, _ = _face((130, 100), 5)
    write_image(imgs / "a.png", a)
    write_image(imgs / "sub" / "b.png", b)
    write_image(imgs / "blank.png", np.full((60, 60, 3), 30, np.uint8))
    (imgs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.png": [20, 10, 90, 80]}))
    out = tmp_path / "out"
    # a missing input is a bad argument: exit 2 before anything is written
    assert main([str(imgs), str(tmp_path / "missing.png"), "--model", str(models["fadenn"]),
                 "--out", str(out)]) == 2
    assert "missing.png: file or folder not found" in capsys.readouterr().err
    assert not out.exists()
    code = main([str(imgs), "--model", str(models["fadenn"]),
                 "--out", str(out), "--boxes", str(boxes), "--detector", "content-test",
                 "--batch-size", "2"])
    cap = capsys.readouterr()
    assert code == 0
    assert "broken.jpg" in cap.err
    assert "blank.png: no face" in cap.err
    s = json.loads((out / "summary.json").read_text())
    by = {e["name"]: e for e in s["images"]}
    assert by["a"]["status"] == "ok" and by["a"]["faces"][0]["box_source"] == "given"
    assert by["sub/b"]["faces"][0]["box_source"] == "detector"
    assert by["blank"]["status"] == "no face" and by["blank"]["n_faces"] == 0
    assert by["broken"]["status"] == "error" and by["broken"]["problem"]
    assert s["n_processed"] == 3 and s["n_errors"] == 1 and s["n_no_face"] == 1
    assert by["a"]["faces"][0]["noise_name"] == "blur"
    assert set(by["a"]["timing"]) == {"detect", "crop", "model", "total"}
    # .pts files hold the predicted image landmarks (ibug 1-based on disk, 0-based read back)
    np.testing.assert_allclose(read_pts(out / "a.pts"),
                               expected([20, 10, 90, 80], (90, 120), models["shape"]),
                               atol=2e-3)
    bbox = ContentDetector()(b)[0]
    np.testing.assert_allclose(read_pts(out / "sub" / "b.pts"),
                               expected(bbox, (130, 100), models["shape"]), atol=2e-3)
    assert not (out / "blank.pts").exists()
    # overlays: same size as the input, something drawn on faces, blank still readable
    ov = cv2.imread(str(out / "a_overlay.png"))[:, :, ::-1]
    assert ov.shape == a.shape and np.abs(ov.astype(int) - a).max() > 50
    assert (out / "sub" / "b_overlay.png").is_file() and (out / "blank_overlay.png").is_file()


def test_cli_all_faces_numbering_and_exit_code_without_images(
        models, tmp_path, capsys, content_detector_registered):
    a, _ = _face((90, 120), 6)
    path = write_image(tmp_path / "two.png", a)
    out = tmp_path / "out"
    assert main([str(path), "--model", str(models["fll"]), "--out", str(out),
                 "--detector", "content-split-test", "--all-faces", "--no-overlay"]) == 0
    assert (out / "two_0.pts").is_file() and (out / "two_1.pts").is_file()
    assert not (out / "two.pts").exists() and not (out / "two_overlay.png").exists()
    s = json.loads((out / "summary.json").read_text())
    assert s["images"][0]["n_faces"] == 2 and s["images"][0]["faces"][1]["noise_probs"] is None
    # no readable image -> exit 2; a bad model -> exit 2 naming it
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert main([str(tmp_path / "bad.png"), "--model", str(models["fll"]), "--out",
                 str(out), "--overwrite"]) == 2
    assert main([str(path), "--model", str(tmp_path / "nomodel"), "--out", str(out)]) == 2
    assert "nomodel" in capsys.readouterr().err


def test_one_face_uses_one_compiled_function_without_retracing(models):
    p = fadenn_tf.load(models["fadenn"], detector=None)
    img = np.zeros((120, 160, 3), np.uint8)
    boxes = [[10, 12, 50, 48], [60, 30, 130, 100], [5, 5, 150, 110]]
    singles = [p.predict(img, boxes=b)[0].landmarks for b in boxes]
    for _ in range(3):
        p.predict(img, boxes=boxes[0])
    assert p.model.fn.experimental_get_tracing_count() == 1      # [1, S, S, 3] only
    batch = p.predict(img, boxes=boxes, all_faces=True)[0]
    for face, one, box in zip(batch.faces, singles, boxes):
        np.testing.assert_allclose(face.landmarks, one, atol=1e-4)
        np.testing.assert_allclose(one, expected(box, img.shape[:2], models["shape"]),
                                   atol=1e-3)


def test_litert_backend_matches_keras(models, tmp_path):
    from fadenn_tf.errors import DataError
    from fadenn_tf.inference.litert_load import load_litert
    img = np.zeros((150, 200, 3), np.uint8)
    boxes = [[10, 12, 50, 48], [60, 30, 130, 100], [100.5, 40.25, 190.0, 140.0]]
    lite = fadenn_tf.load(models["fadenn"], detector=None, backend="litert")
    assert lite.model.kind == "litert" and lite.size == SIZE and lite.has_classifier
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum()
    one = lite.predict(img, boxes=boxes[1])[0]
    np.testing.assert_allclose(one.landmarks, expected(boxes[1], img.shape[:2],
                                                       models["shape"]), atol=1e-3)
    np.testing.assert_allclose(one.noise_probs, probs, atol=1e-5)
    # three faces through a batch-1 model: one crop at a time, same answers
    res = lite.predict([img, img, img], boxes=boxes)
    for r, box in zip(res, boxes):
        np.testing.assert_allclose(r.landmarks, expected(box, img.shape[:2], models["shape"]),
                                   atol=1e-3)
    # an FLL alone and a .tflite file
    fll = load_litert(models["fll"])
    out = fll(np.zeros((2, SIZE, SIZE, 3), np.float32))
    np.testing.assert_allclose(out["landmarks"][1], models["shape"], atol=1e-3)
    path = tmp_path / "m.tflite"
    path.write_bytes(fll.tflite_bytes)      # the float32 conversion, saved for reuse
    from_file = fadenn_tf.load(path, detector=None, backend="litert")
    assert from_file.model.fixed_batch == 1 and from_file.model.tflite_bytes is None
    np.testing.assert_allclose(from_file.predict(img, boxes=boxes[0])[0].landmarks,
                               expected(boxes[0], img.shape[:2], models["shape"]), atol=1e-3)
    with pytest.raises(DataError, match="nope.tflite"):
        fadenn_tf.load(tmp_path / "nope.tflite", backend="litert")
    with pytest.raises(ValueError, match="backend"):
        fadenn_tf.load(models["fll"], backend="onnx")
