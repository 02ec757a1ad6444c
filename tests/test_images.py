"""Image and video reading: RGB uint8 out of every input kind, clear errors for bad files."""
import struct
import zlib

import cv2
import numpy as np
import pytest

from fadenn_tf.data.images import (VideoFrameReader, check_image, image_size, read_image,
                                   read_video_frames, video_frame_count, video_size)
from fadenn_tf.errors import DataError
from tests.fixtures import face_image, frame_level, write_image, write_video


def _rgb(h=10, w=12, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_chunk(ctype, data):
    body = ctype + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def _write_palette_png(path, index, palette):
    """A real 8-bit palette PNG (colour type 3), written by hand: cv2 cannot write one."""
    h, w = index.shape
    raw = b"".join(b"\x00" + index[r].astype(np.uint8).tobytes() for r in range(h))
    data = (b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + _png_chunk(b"PLTE", palette.astype(np.uint8).tobytes())
            + _png_chunk(b"IDAT", zlib.compress(raw))
            + _png_chunk(b"IEND", b""))
    path.write_bytes(data)


def test_colour_png_is_rgb_exact(tmp_path):
    img = _rgb()
    write_image(tmp_path / "a.png", img)  # helper writes BGR on disk for RGB input
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (10, 12, 3)
    np.testing.assert_array_equal(out, img)
    assert out.flags["C_CONTIGUOUS"]


def test_channel_order_is_rgb(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    out = read_image(tmp_path / "red.png")
    assert (out[..., 0] == 255).all() and (out[..., 1:] == 0).all()


def test_jpeg_reads_close_to_source(tmp_path):
    img = face_image((100, 120), None, 0, background=90)
    write_image(tmp_path / "a.jpg", img)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == (100, 120, 3)
    assert abs(float(out.mean()) - 90) < 2


def test_grayscale_replicated(tmp_path):
    g = np.arange(120, dtype=np.uint8).reshape(10, 12)
    cv2.imwrite(str(tmp_path / "g.png"), g)
    out = read_image(tmp_path / "g.png")
    assert out.shape == (10, 12, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_rgba_alpha_dropped_colours_kept(tmp_path):
    rgb = _rgb(seed=1)
    alpha = np.zeros((10, 12), np.uint8)
    alpha[:5] = 255
    bgra = np.dstack([rgb[..., ::-1], alpha])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    out = read_image(tmp_path / "a.png")
    assert out.shape == (10, 12, 3)
    np.testing.assert_array_equal(out, rgb)  # also where alpha == 0: not composited


@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_scaled_by_257(tmp_path, channels):
    rng = np.random.default_rng(2)
    v = rng.integers(0, 65536, (10, 12, channels), dtype=np.uint16)
    v[0, 0] = 65535
    v[0, 1] = 0
    v[0, 2] = 257 * 100 + 129  # 100.502 rounds up to 101
    v[0, 3] = 257 * 100 + 128  # 100.498 rounds down to 100
    cv2.imwrite(str(tmp_path / "h.png"), v if channels == 3 else v[..., 0])
    out = read_image(tmp_path / "h.png")
    expect = np.floor(v.astype(np.float64) / 257 + 0.5).astype(np.uint8)
    expect = np.repeat(expect, 3, axis=2) if channels == 1 else expect[..., ::-1]
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expect)
    assert out[0, 0, 0] == 255 and out[0, 1, 0] == 0
    assert out[0, 2, 0] == 101 and out[0, 3, 0] == 100


def test_palette_png_expanded(tmp_path):
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]])
    index = np.random.default_rng(3).integers(0, 4, (6, 7))
    _write_palette_png(tmp_path / "p.png", index, palette)
    out = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(out, palette[index].astype(np.uint8))


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        read_image(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(err.value)


def test_empty_file(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.png.*empty"):
        read_image(tmp_path / "e.png")
    with pytest.raises(DataError, match="empty"):
        check_image(tmp_path / "e.png", decode=False)


def test_not_an_image(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    with pytest.raises(DataError, match=r"x\.jpg.*cannot decode"):
        read_image(tmp_path / "x.jpg")


def test_folder_instead_of_file(tmp_path):
    (tmp_path / "d.jpg").mkdir()
    with pytest.raises(DataError, match="folder"):
        read_image(tmp_path / "d.jpg")


@pytest.mark.parametrize("ext", [".jpg", ".png"])
@pytest.mark.parametrize("keep", [0.5, -2, -20])
def test_truncated_image_detected(tmp_path, ext, keep):
    path = write_image(tmp_path / f"t{ext}", face_image((100, 120), None, 4))
    data = path.read_bytes()
    read_image(path)  # the intact file reads
    cut = int(len(data) * keep) if keep > 0 else len(data) + keep
    path.write_bytes(data[:cut])
    with pytest.raises(DataError) as err:
        read_image(path)
    assert f"t{ext}" in str(err.value)
    with pytest.raises(DataError, match="truncated"):
        check_image(path, decode=False)  # the cheap check catches it too


def test_progressive_jpeg_not_mistaken_for_truncated(tmp_path):
    img = face_image((100, 120), None, 5)
    cv2.imwrite(str(tmp_path / "p.jpg"), img[..., ::-1], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert read_image(tmp_path / "p.jpg").shape == (100, 120, 3)
    assert check_image(tmp_path / "p.jpg", decode=False) == (100, 120)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp"])
def test_image_size_and_check(tmp_path, ext):
    path = write_image(tmp_path / f"s{ext}", _rgb(37, 53))
    assert image_size(path) == (37, 53)
    assert check_image(path, decode=True) == (37, 53)
    assert check_image(path, decode=False) == (37, 53)


# ----------------------------------------------------------------------------- video

@pytest.fixture
def video(tmp_path):
    frames = [face_image((100, 120), None, i, background=frame_level(i)) for i in range(5)]
    return write_video(tmp_path / "vid.avi", frames)


def _level(frame):
    return float(frame[:8, :8].mean())


def test_video_round_trip(video):
    frames = list(read_video_frames(video))
    assert len(frames) == 5
    for i, f in enumerate(frames):
        assert f.shape == (100, 120, 3) and f.dtype == np.uint8
        assert abs(_level(f) - frame_level(i)) < 4
    assert video_frame_count(video) == 5
    assert video_frame_count(video, exact=True) == 5
    assert video_size(video) == (100, 120)


def test_video_start_stop(video):
    frames = list(read_video_frames(video, start=2, stop=4))
    assert len(frames) == 2
    assert abs(_level(frames[0]) - frame_level(2)) < 4
    assert abs(_level(frames[1]) - frame_level(3)) < 4


def test_video_errors_name_file(tmp_path):
    with pytest.raises(DataError, match=r"missing\.avi.*not found"):
        read_video_frames(tmp_path / "missing.avi")  # raised at the call, not at next()
    (tmp_path / "bad.avi").write_bytes(b"garbage" * 100)
    with pytest.raises(DataError, match=r"bad\.avi"):
        video_frame_count(tmp_path / "bad.avi")


def test_frame_reader_forward_backward_and_end(video):
    with VideoFrameReader() as reader:
        for i in (0, 1, 3, 4, 2, 2):  # forward, skip ahead, then back (reopen)
            assert abs(_level(reader.read(video, i)) - frame_level(i)) < 4
        with pytest.raises(DataError, match=r"vid\.avi.*frame 7.*ends after 5"):
            reader.read(video, 7)
        assert abs(_level(reader.read(video, 0)) - frame_level(0)) < 4
