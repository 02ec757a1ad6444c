"""Overlay drawing: labels stay inside the image."""
import cv2
import numpy as np
import pytest

from fadenn_tf.drawing import draw_text


def _ink_columns(img):
    cols = np.nonzero(img.max(axis=(0, 2)) > 0)[0]
    return cols.min(), cols.max()


@pytest.mark.parametrize("origin", [(10, 30), (390, 30), (-50, 30), (10, 2), (10, 199)])
def test_a_label_near_any_edge_is_drawn_whole(origin):
    text = "rejected fit 0.01"
    black = np.zeros((200, 400, 3), np.uint8)
    img = draw_text(black, text, origin, color=(255, 255, 255), scale=0.5)
    middle = draw_text(black, text, (100, 100), color=(255, 255, 255), scale=0.5)
    lo, hi = _ink_columns(img)
    mlo, mhi = _ink_columns(middle)
    assert hi - lo == mhi - mlo           # as wide as a label drawn in the middle: not clipped
    assert (img > 0).sum() == (middle > 0).sum()
    rows = np.nonzero(img.max(axis=(1, 2)) > 0)[0]
    assert rows.min() > 0 and rows.max() < 199


def test_a_label_inside_the_image_is_not_moved():
    a = draw_text(np.zeros((200, 400, 3), np.uint8), "ok", (50, 60), color=(255, 255, 255))
    b = np.zeros((200, 400, 3), np.uint8)
    s = max(0.4, 200 / 600)
    th = max(1, int(round(s * 1.5)))
    cv2.putText(b, "ok", (50, 60), cv2.FONT_HERSHEY_SIMPLEX, s, (0, 0, 0), th + 2, cv2.LINE_AA)
    cv2.putText(b, "ok", (50, 60), cv2.FONT_HERSHEY_SIMPLEX, s, (255, 255, 255), th,
                cv2.LINE_AA)
    np.testing.assert_array_equal(a, b)
