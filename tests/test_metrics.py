"""Metrics against values worked out by hand."""
import math

import numpy as np
import pytest

from fadenn_tf import metrics as M


def square_face(side=10.0, n=68, x0=5.0, y0=7.0):
    """68 points inside a side x side box with the corners occupied; eyes 36/45 set apart."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, side, size=(n, 2))
    pts[0], pts[1], pts[2], pts[3] = (0, 0), (side, 0), (0, side), (side, side)
    pts[36], pts[45] = (2.0, 3.0), (8.0, 3.0)  # eye distance 6
    return pts + [x0, y0]


def test_normalizers_by_hand():
    gt = square_face(side=10.0)
    assert M.normalizer_values(gt, "diagonal") == pytest.approx(10 * math.sqrt(2))
    assert M.normalizer_values(gt, "box") == pytest.approx(10.0)
    assert M.normalizer_values(gt, "interocular") == pytest.approx(6.0)
    # A 8 x 2 rectangle: diagonal sqrt(68), box sqrt(16) = 4.
    rect = np.array([[0.0, 0.0], [8.0, 2.0], [3.0, 1.0]])
    assert M.normalizer_values(rect, "diagonal") == pytest.approx(math.sqrt(68))
    assert M.normalizer_values(rect, "box") == pytest.approx(4.0)


def test_nme_two_point_case():
    # Two points 3 px apart horizontally and 4 px vertically: box 3 x 4, diagonal 5, box sqrt(12).
    gt = np.array([[0.0, 0.0], [3.0, 4.0]])
    pred = gt + [[0.0, 1.0], [3.0, 0.0]]  # errors 1 and 3 -> mean 2
    assert M.nme(pred, gt, "diagonal") == pytest.approx(2 / 5)
    assert M.nme(pred, gt, "box") == pytest.approx(2 / math.sqrt(12))


def test_nme_batch_shift_and_interocular():
    gt = np.stack([square_face(), square_face(side=20.0)])
    pred = gt + [0.6, 0.8]  # every point off by exactly 1 px
    e = M.nme(pred, gt)  # default: diagonal
    assert e.shape == (2,)
    np.testing.assert_allclose(e, [1 / (10 * math.sqrt(2)), 1 / (20 * math.sqrt(2))])
    np.testing.assert_allclose(M.nme(pred, gt, "interocular"), [1 / 6, 1 / 6])
    assert M.nme(gt, gt, "box").tolist() == [0.0, 0.0]


def test_nme_bad_inputs():
    gt = square_face()
    with pytest.raises(ValueError, match="diagonal, box, interocular"):
        M.nme(gt, gt, "iod")
    with pytest.raises(ValueError, match="shape"):
        M.nme(gt[:10], gt)
    with pytest.raises(ValueError, match="68 points"):
        M.nme(gt[:10], gt[:10], "interocular")
    with pytest.raises(ValueError, match="zero"):
        M.nme(np.zeros((68, 2)), np.zeros((68, 2)))
    pred = gt.copy()
    pred[5] = np.nan
    assert math.isnan(M.nme(pred, gt))


def test_ced_and_failure_rate():
    e = [0.0, 0.04, 0.1, np.nan]
    np.testing.assert_allclose(M.ced(e, [0.0, 0.039, 0.04, 0.08, 0.1, 10.0]),
                               [0.25, 0.25, 0.5, 0.5, 0.75, 0.75])
    assert M.failure_rate(e, 0.08) == pytest.approx(0.5)  # 0.1 and NaN fail
    assert M.failure_rate([0.08], 0.08) == 0.0  # equal to the threshold is not a failure
    with pytest.raises(ValueError, match="empty"):
        M.ced([], [0.1])


def test_auc_by_hand():
    # CED of [0, 0.04, 0.1] on [0, 0.08]: 1/3 on [0, 0.04), 2/3 on [0.04, 0.08].
    # Area = 0.04/3 + 0.04*2/3 = 0.04 -> AUC = 0.04 / 0.08 = 0.5.
    assert M.auc([0.0, 0.04, 0.1], 0.08) == pytest.approx(0.5)
    assert M.auc([0.0, 0.04, 0.1], 0.08, method="simpson") == pytest.approx(0.5, abs=1e-3)
    assert M.auc([0.0] * 5) == pytest.approx(1.0)
    assert M.auc([0.2, np.inf]) == 0.0
    assert M.auc([0.02], 0.08) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="exact, simpson"):
        M.auc([0.1], method="trapz")


def test_auc_methods_agree_on_random_errors():
    rng = np.random.default_rng(1)
    e = rng.gamma(4.0, 0.01, size=500)
    exact, simpson = M.auc(e), M.auc(e, method="simpson")
    assert 0.2 < exact < 0.9
    assert abs(exact - simpson) < 1e-3


def test_summarize_and_format():
    s = M.summarize([0.0, 0.04, 0.1, np.nan], normalizer="box")
    assert s["n"] == 4 and s["n_nonfinite"] == 1
    assert s["mean_nme"] == pytest.approx(0.14 / 3)
    assert s["median_nme"] == pytest.approx(0.04)
    assert s["auc"] == pytest.approx((0.08 + 0.04) / 4 / 0.08)
    assert s["fr"] == pytest.approx(0.5)
    assert s["threshold"] == 0.08 and s["normalizer"] == "box"
    line = M.format_summary(s)
    assert "NME(box)" in line and "AUC@0.08" in line and "1 non-finite" in line
    with pytest.raises(ValueError, match="valid"):
        M.summarize([0.1], normalizer="bbox")
    assert set(M.NORMALIZER_INFO) == set(M.NORMALIZERS)
