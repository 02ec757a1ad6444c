"""Checked video writing: a video appears at its path complete, or not at all.

OpenCV's VideoWriter reports no write failure (a full disk or a file-size limit leaves a cut
file and no error), so checked_video_writer writes to a temporary file beside the target,
reads it back to count its frames, and renames it onto the target only when every frame
written is there; otherwise it raises WriteError naming the target and removes the temporary.
"""
import contextlib
from pathlib import Path

import cv2
import numpy as np

from fadenn_tf.data.images import video_frame_count
from fadenn_tf.errors import DataError, WriteError
from fadenn_tf.utils.atomic import atomic_path


class _FrameSink:
    """What the `with checked_video_writer(...)` block writes to: write(rgb), n (frames)."""

    def __init__(self, tmp, path, fps, fourcc):
        self.tmp, self.path, self.fps, self.fourcc = Path(tmp), Path(path), fps, fourcc
        self.n = 0
        self._writer = None

    def write(self, rgb):
        """Append one frame: uint8 RGB (H, W, 3); every frame has the first one's size."""
        if self._writer is None:
            h, w = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*self.fourcc),
                                           float(self.fps), (w, h))
            if not self._writer.isOpened():
                raise WriteError(self.path, f"OpenCV cannot open a {self.fourcc} video writer")
        self._writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))   # OpenCV takes BGR
        self.n += 1

    def release(self):
        if self._writer is not None:
            self._writer.release()

    def verify(self):
        """WriteError unless the temporary file reads back with exactly n frames."""
        if self.n == 0:
            raise ValueError(f"{self.path}: no frame was written (a video needs at least one)")
        try:   # counted by decoding: a cut file can keep the frame count of its header
            got = video_frame_count(self.tmp, exact=True)
        except DataError:      # cut before its header was complete
            got = 0
        if got != self.n:
            raise WriteError(self.path, f"the video holds {got} of the {self.n} frames "
                                        "written: OpenCV lost some (full disk?)")


@contextlib.contextmanager
def checked_video_writer(path, fps, fourcc="MJPG"):
    """Context manager yielding a writer with write(rgb uint8 (H, W, 3)) and n (frames
    written so far); on leaving the block the video (codec `fourcc`, `fps` frames per second)
    is verified and renamed onto `path` (fadenn_tf.utils.atomic.atomic_path).

    Raises WriteError(path, ...) when the writer cannot be opened or the file does not read
    back with every frame (full disk); ValueError when the block wrote no frame. On any
    error, nothing is left at `path` (an existing file there stays as it was).
    """
    with atomic_path(path) as tmp:
        sink = _FrameSink(tmp, path, fps, fourcc)
        try:
            yield sink
        finally:
            sink.release()
        sink.verify()
