"""bench's e2e rows: whole photos to landmarks with the shipped model, per extra face, dlib
on the same photos (or the reason it is skipped), and the start-up of a fresh process."""
import numpy as np
import pytest

from fadenn_tf import pretrained
from fadenn_tf.benchmark import runner, settings
from fadenn_tf.benchmark.api_speed import synthetic_clip
from fadenn_tf.benchmark.photo_speed import find_photos
from fadenn_tf.data.pts import write_pts
from fadenn_tf.detect import UltraFaceDetector
from fadenn_tf.errors import DataError

from fixtures import write_image

pytestmark = pytest.mark.skipif(pretrained.litert_path("pretrained") is None,
                                reason="no shipped LiteRT copy of pretrained")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two photos: one face (640x360), and two faces side by side (1280x360)."""
    d = tmp_path_factory.mktemp("photos")
    frames, _, _ = synthetic_clip(2, detector=UltraFaceDetector())
    write_image(d / "one.png", frames[0])
    write_image(d / "two.png", np.hstack([frames[0], frames[1]]))
    for k in (1, 2):                                  # annotations are counted, not needed
        write_pts(d / f"two_{k}.pts", np.zeros((68, 2)) + 100 * k)
    return d


def test_find_photos_counts_annotations_and_refuses_empty_folders(photos, tmp_path):
    found, counts = find_photos(photos)
    assert [p.name for p in found] == ["one.png", "two.png"]
    assert counts[found[0]] is None and counts[found[1]] == 2
    assert len(find_photos(photos, limit=1)[0]) == 1
    with pytest.raises(DataError, match="no images"):
        find_photos(tmp_path)


def test_e2e_rows(photos):
    s = settings.Settings(configs={}, sections=("e2e",), repeats=2, photos=str(photos),
                          startup_runs=1)
    rows = runner.run_benchmark(s)["rows"]
    by_path = {}
    for r in rows:
        by_path.setdefault(r["path"], []).append(r)
    ours = by_path["photo to landmarks, one face"][0]
    assert ours["model"] == "pretrained" and ours["latency_ms_b1"] > 0
    assert "a face on 2/2 photos" in ours["note"]
    once = by_path["photo to landmarks, one face, refine=False"][0]
    assert once["model"] == "pretrained" and once["latency_ms_b1"] > 0
    extra = by_path["per extra face (all_faces)"][0]
    assert extra["latency_ms_b1"] is not None and "over the 1 photos" in extra["note"]
    assert "2 annotated" in extra["note"]
    start = by_path["start-up: import + load + first predict"][0]
    assert start["latency_ms_b1"] > 0 and "TensorFlow imported: False" in start["note"]
    try:
        import dlib  # noqa: F401
        dlib_rows = [r for r in rows if r["model"].startswith("dlib")]
        assert any(r["path"] == "face detector alone" and r["latency_ms_b1"] > 0
                   for r in dlib_rows)
        assert all(r.get("latency_ms_b1") or "not found" in r["error"] for r in dlib_rows)
    except ImportError:
        assert "dlib is not installed" in by_path["photo to landmarks, one face"][1]["error"]
    for r in rows:                   # every measured row names the CPU and the load
        assert "error" in r or ("CPU " in r["note"] and "load " in r["note"])
