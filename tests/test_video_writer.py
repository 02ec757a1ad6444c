"""Checked video writing (fadenn_tf.data.video_writer): a video appears complete, with every
frame written, or not at all. The full-disk case runs in test_write_failures.py."""
import numpy as np
import pytest

from fadenn_tf.data.images import read_video_frames, video_frame_count
from fadenn_tf.data.video_writer import checked_video_writer
from fadenn_tf.errors import WriteError


def frames(n, size=(48, 64)):
    return [np.full(size + (3,), 30 * i, np.uint8) for i in range(n)]


def test_a_complete_video_is_renamed_into_place(tmp_path):
    path = tmp_path / "sub" / "v.avi"
    with checked_video_writer(path, 10) as video:
        for f in frames(5):
            video.write(f)
            assert not path.exists()            # written beside it, renamed at the end
    assert video.n == 5 and video_frame_count(path, exact=True) == 5
    means = [f.mean() for f in read_video_frames(path)]
    assert np.allclose(means, [30 * i for i in range(5)], atol=4)   # MJPG is lossy
    assert [p.name for p in path.parent.iterdir()] == ["v.avi"]     # no temporary left


def test_a_frame_opencv_drops_is_a_write_error_and_leaves_the_old_file(tmp_path):
    path = tmp_path / "v.avi"
    path.write_bytes(b"earlier")
    # OpenCV's writer silently drops a frame of another size, as it drops frames on a full
    # disk: the read-back count catches it
    with pytest.raises(WriteError, match=r"v.avi: could not write it \(the video holds 3 of "
                                         r"the 4 frames"):
        with checked_video_writer(path, 10) as video:
            for f in frames(3) + frames(1, (24, 32)):
                video.write(f)
    assert path.read_bytes() == b"earlier"
    assert [p.name for p in tmp_path.iterdir()] == ["v.avi"]


def test_an_error_in_the_block_or_no_frame_writes_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="stop"):
        with checked_video_writer(tmp_path / "a.avi", 10) as video:
            video.write(frames(1)[0])
            raise RuntimeError("stop")
    with pytest.raises(ValueError, match="b.avi: no frame was written"):
        with checked_video_writer(tmp_path / "b.avi", 10):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_synthetic_video_is_written_whole(tmp_path):
    from fadenn_tf.data.pts import read_pts
    from fadenn_tf.data.synthetic.video import write_video
    n = write_video(tmp_path / "410", np.random.default_rng(0), 6, (96, 128))
    assert n == 6 and video_frame_count(tmp_path / "410" / "vid.avi", exact=True) == 6
    annots = sorted((tmp_path / "410" / "annot").iterdir())
    assert [p.name for p in annots] == [f"{i:06d}.pts" for i in range(1, 7)]
    assert read_pts(annots[0], 68).shape == (68, 2)
    assert sorted(p.name for p in (tmp_path / "410").iterdir()) == ["annot", "vid.avi"]
