"""experiments/paired_bootstrap.py: paired differences of two models from evaluate's
errors.csv, against values worked out here, with the pairing kept by image."""
import csv

import numpy as np
import pytest

from tests.fixtures import load_experiment

FIELDS = ["image", "frame", "subset", "model", "condition", "noise_type", "level",
          "detected", "nme_diagonal", "nme_box", "nme_interocular"]


@pytest.fixture(scope="module")
def paired():
    return load_experiment("paired_bootstrap")


def _write(folder, table):
    """errors.csv from {model: {condition: [NME per image]}}, model B's rows in reverse
    image order (the script must pair by image, not by row)."""
    folder.mkdir()
    with open(folder / "errors.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        for model, conds in table.items():
            for cond, values in conds.items():
                order = range(len(values)) if model == "A" else reversed(range(len(values)))
                for i in order:
                    w.writerow([f"img{i}.jpg", "", "x", model, cond, cond.split("-")[0], 1, 1,
                                values[i], values[i], values[i]])


def test_paired_differences_clean_and_noisy(paired, tmp_path, capsys):
    rng = np.random.default_rng(0)
    b_clean = rng.uniform(0.01, 0.03, 40)
    b_noisy = [rng.uniform(0.01, 0.04, 40) for _ in range(2)]
    a_clean = b_clean - 0.002 + rng.normal(0, 1e-4, 40)     # A better by 0.002 clean
    a_noisy = [v + 0.001 for v in b_noisy]                    # and worse by 0.001 noisy
    _write(tmp_path / "ev", {
        "A": {"clean": a_clean, "blur-1": a_noisy[0], "blur-2": a_noisy[1]},
        "B": {"clean": b_clean, "blur-1": b_noisy[0], "blur-2": b_noisy[1]}})
    assert paired.main([str(tmp_path / "ev"), "--pair", "A:B", "--resamples", "2000"]) == 0
    row = capsys.readouterr().out.splitlines()[-1]              # the one pair's row
    cells = row.split("|")
    assert cells[2].strip() == "40"
    mean, low, high = [float(v) for v in cells[3].replace("(", "").replace(")", "")
                       .replace("to", "").split()]
    assert mean == pytest.approx(np.mean(a_clean - b_clean), abs=1e-5)
    assert low < mean < high < 0                        # the interval excludes zero
    assert high - low < 1e-4                            # tight: the differences barely vary
    noisy = [float(v) for v in cells[4].replace("(", "").replace(")", "").replace("to", "")
             .split()]
    assert noisy == pytest.approx([0.001] * 3, abs=1e-6)


def test_an_unknown_model_or_folder_is_an_error(paired, tmp_path, capsys):
    _write(tmp_path / "ev", {"A": {"clean": [0.1]}, "B": {"clean": [0.2]}})
    with pytest.raises(SystemExit) as exit_:
        paired.main([str(tmp_path / "ev"), "--pair", "A:C"])
    assert exit_.value.code == 2 and "no model ['C']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        paired.main([str(tmp_path / "missing"), "--pair", "A:B"])
    assert exit_.value.code == 2 and "errors.csv: not found" in capsys.readouterr().err
