"""Read images and video frames as RGB uint8 arrays, with clear errors for bad files.

Conventions:
- Images come back as (H, W, 3) uint8 RGB, C-contiguous.
- Grayscale is replicated to 3 channels; an alpha channel is DROPPED (the colour values are
  kept as stored, not composited); 16-bit images are scaled to 8 bits by round(v / 257), so
  65535 -> 255 exactly; palette PNGs are expanded to their RGB colours.
- EXIF orientation is ignored: landmark annotations (300-W, Menpo) refer to the stored pixel
  grid, as menpo reads it.
- Truncation is checked explicitly (JPEG: no end-of-image marker after the last scan; PNG:
  the chunk list does not reach IEND), because some decoder builds return a half-grey image
  for a truncated file instead of failing.
Every problem raises fadenn_tf.errors.DataError(path, problem).
"""
import struct
from pathlib import Path

import cv2
import numpy as np

from fadenn_tf.errors import DataError

# Image files: what `predict` reads from folders, and the part of it that dataset indexers
# pair with .pts annotations.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
ANNOTATED_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
# Start-of-frame markers that carry the image size (not DHT C4, JPG C8, DAC CC).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _read_bytes(path, what="image"):
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, f"{what} file not found") from None
    except IsADirectoryError:
        raise DataError(path, f"expected an {what} file, found a folder") from None
    except OSError as exc:
        raise DataError(path, f"cannot read {what} file ({exc})") from None
    if not data:
        raise DataError(path, f"empty {what} file (0 bytes)")
    return data


def _png_truncated(data):
    """True when the PNG chunk list stops before an IEND chunk."""
    pos = len(_PNG_SIG)
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        pos += 12 + length
        if ctype == b"IEND":
            return pos > len(data)
    return True


def _jpeg_truncated(data):
    """True when no end-of-image marker follows the last start-of-scan marker."""
    return data.rfind(b"\xff\xd9") < max(data.rfind(b"\xff\xda"), 2)


def _check_not_truncated(path, data):
    if data.startswith(_PNG_SIG) and _png_truncated(data):
        raise DataError(path, "truncated PNG image (the file ends before its IEND chunk)")
    if data.startswith(_JPEG_SOI) and _jpeg_truncated(data):
        raise DataError(path, "truncated JPEG image (no end-of-image marker after the image data)")


def _header_size(data):
    """(height, width) parsed from a PNG or JPEG header, or None if not found."""
    if data.startswith(_PNG_SIG) and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return int(h), int(w)
    if data.startswith(_JPEG_SOI):
        pos = 2
        while pos + 4 <= len(data):
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
                pos += 2
                continue
            if marker in (0xDA, 0xD9):  # scan or end reached without a size
                return None
            (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
            if marker in _JPEG_SOF and pos + 9 <= len(data):
                h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
                return int(h), int(w)
            pos += 2 + length
    return None


def _to_rgb8(path, arr):
    """Convert a cv2.IMREAD_UNCHANGED array (BGR order) to (H, W, 3) uint8 RGB."""
    if arr.dtype == np.uint16:
        arr = ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise DataError(path, f"unsupported pixel type {arr.dtype} (want 8- or 16-bit integers)")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(path, f"image has an unusable shape {arr.shape}")
    c = arr.shape[2]
    if c in (1, 2):  # gray, gray + alpha: replicate gray, drop alpha
        out = np.repeat(arr[:, :, :1], 3, axis=2)
    elif c in (3, 4):  # BGR, BGRA: reorder, drop alpha
        out = arr[:, :, 2::-1]
    else:
        raise DataError(path, f"image has {c} channels (want 1 to 4)")
    return np.ascontiguousarray(out)


def decode_image(data, path="<bytes>"):
    """Decode encoded image bytes to (H, W, 3) uint8 RGB; `path` only names errors."""
    if not data:
        raise DataError(path, "empty image file (0 bytes)")
    _check_not_truncated(path, data)
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise DataError(path, f"cannot decode image ({exc})") from None
    if arr is None:
        raise DataError(path, "cannot decode image (corrupt, truncated or not an image format "
                              "OpenCV reads)")
    return _to_rgb8(path, arr)


def read_image(path):
    """Read an image file as (H, W, 3) uint8 RGB. Raises DataError naming the file."""
    return decode_image(_read_bytes(path), path)


def _size_of(data, path):
    """(height, width) from the PNG/JPEG header, else by decoding; a zero size is an error."""
    hw = _header_size(data)
    if hw is None:
        hw = decode_image(data, path).shape[:2]
    if hw[0] <= 0 or hw[1] <= 0:
        raise DataError(path, f"image header gives a zero size {hw[1]}x{hw[0]}")
    return tuple(int(v) for v in hw)


def image_size(path):
    """(height, width) of an image file, from its header when it is PNG or JPEG, else by
    decoding. Does not check that the pixel data is complete (see check_image)."""
    data = _read_bytes(path)
    return _size_of(data, path)


def check_image(path, decode=True):
    """Validate an image file and return its (height, width).

    decode=True decodes the pixels (catches every corrupt file; a few ms per image).
    decode=False only checks existence, size > 0, the header and truncation (JPEG/PNG).
    """
    data = _read_bytes(path)
    if decode:
        return tuple(decode_image(data, path).shape[:2])
    _check_not_truncated(path, data)
    return _size_of(data, path)


# --------------------------------------------------------------------------------- video

def _open_video(path):
    path = Path(path)
    if not path.exists():
        raise DataError(path, "video file not found")
    if path.is_dir():
        raise DataError(path, "expected a video file, found a folder")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise DataError(path, "cannot open video (corrupt file or a codec OpenCV cannot read)")
    return cap


def _frame_rgb(path, frame):
    if frame is None or frame.size == 0:
        raise DataError(path, "video returned an empty frame")
    return _to_rgb8(path, frame)


def video_frame_count(path, exact=False):
    """Number of frames in a video. exact=False trusts the container's frame count (exact for
    AVI/MJPG, sometimes approximate for other codecs); exact=True counts by grabbing frames."""
    cap = _open_video(path)
    try:
        n = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        if exact or n <= 0:
            n = 0
            while cap.grab():
                n += 1
        return n
    finally:
        cap.release()


def video_size(path):
    """(height, width) of a video's frames (from the container, else the first frame)."""
    cap = _open_video(path)
    try:
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if h <= 0 or w <= 0:
            ok, frame = cap.read()
            if not ok:
                raise DataError(path, "video has no readable frames")
            h, w = frame.shape[:2]
        return h, w
    finally:
        cap.release()


def read_video_frames(path, start=0, stop=None):
    """Iterate the frames [start, stop) of a video as (H, W, 3) uint8 RGB, in order.

    The video is opened (and a DataError raised) when this is called, not at the first next().
    A video that yields no frame at all raises DataError.
    """
    cap = _open_video(path)

    def frames():
        try:
            i = 0
            while stop is None or i < stop:
                if i < start:
                    ok = cap.grab()
                    frame = None
                else:
                    ok, frame = cap.read()
                if not ok:
                    if i == 0:
                        raise DataError(path, "video has no readable frames")
                    return
                if frame is not None:
                    yield _frame_rgb(path, frame)
                i += 1
        finally:
            cap.release()

    return frames()


class VideoFrameReader:
    """Read single frames from videos efficiently when requests come mostly in order.

    Keeps the last video open and its position; a request for a later frame of the same video
    grabs forward (no seeking, which is frame-inexact for some codecs), an earlier frame
    reopens the video. Use as a context manager or call close().
    """

    def __init__(self):
        self._path = None
        self._cap = None
        self._pos = 0  # index of the next frame read() would return

    def read(self, path, frame):
        """Frame `frame` (0-based) of the video at `path` as (H, W, 3) uint8 RGB."""
        path = str(path)
        if frame < 0:
            raise ValueError(f"frame index must be >= 0, got {frame}")
        if path != self._path or frame < self._pos:
            self.close()
            self._cap = _open_video(path)
            self._path, self._pos = path, 0
        while self._pos < frame:
            if not self._cap.grab():
                self._end(path, frame)
            self._pos += 1
        ok, img = self._cap.read()
        if not ok:
            self._end(path, frame)
        self._pos += 1
        return _frame_rgb(path, img)

    def _end(self, path, frame):
        n = self._pos
        self.close()
        raise DataError(path, f"frame {frame} (0-based) requested but the video ends after "
                              f"{n} frames")

    def close(self):
        if self._cap is not None:
            self._cap.release()
        self._cap, self._path, self._pos = None, None, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
