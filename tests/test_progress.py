"""Progress: one object whose modes (bar, lines, off) share one interface; in a log, plain
lines (count/total, caller's figures, rate, ETA), no bar."""
import io
import sys

import pytest

from fadenn_tf.utils.progress import MODES, Progress, progress, progress_mode


def LineProgress(**kwargs):
    return Progress(mode="lines", **kwargs)


def test_lines_every_tenth_with_the_latest_figures():
    out = io.StringIO()
    bar = LineProgress(total=20, desc="train fll", unit="step", stream=out)
    for step in range(1, 21):
        bar.update(1)
        if step % 2 == 0:       # as the training loop: figures set right after the update
            bar.set_postfix(loss=f"{1 / step:.3f}", img_s="64")
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("train fll: step 2/20 (10%), loss=0.500, img_s=64, ")
    assert "ETA " in lines[0] and "step/s" in lines[0]
    assert lines[-1].startswith("train fll: step 20/20 (100%), loss=0.050")
    assert "ETA" not in lines[-1] and "\r" not in out.getvalue()


def test_resumed_count_and_final_line_on_close():
    out = io.StringIO()
    bar = LineProgress(total=100, desc="train dae", unit="step", stream=out)
    bar.update(95)                        # resumed at step 95
    for _ in range(3):
        bar.update(1)
    bar.close()
    bar.close()
    lines = out.getvalue().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["train dae: step 95/100 (95%)",
                                                   "train dae: step 98/100 (98%)"]


def test_iterating_reports_and_disabled_is_silent(capsys, monkeypatch):
    monkeypatch.delenv("FADENN_PROGRESS", raising=False)
    assert list(progress(range(5), desc="decoding", unit="img")) == list(range(5))
    assert list(progress(range(5), desc="quiet", enabled=False)) == list(range(5))
    err = capsys.readouterr().err
    assert "decoding: img 5/5 (100%)" in err and "quiet" not in err


def test_environment_can_force_lines_or_silence(capsys, monkeypatch):
    monkeypatch.setenv("FADENN_PROGRESS", "0")
    list(progress(range(3), desc="off"))
    monkeypatch.setenv("FADENN_PROGRESS", "lines")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    list(progress(range(3), desc="forced"))
    err = capsys.readouterr().err
    assert "off" not in err and "forced: it 3/3" in err


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_has_the_same_interface(mode):
    """What any caller may do, in every mode: iterate, update, figures, close twice, `with`,
    read the count (degrade once read tqdm's `.disable`, which lines mode lacked)."""
    out = io.StringIO()
    with Progress(total=4, desc="work", unit="img", mode=mode, stream=out) as bar:
        bar.update(1)
        bar.set_postfix(loss="0.5")
        bar.set_postfix_str("3 kept")
        bar.update(2)
        bar.write("phase two")
        assert (bar.n, bar.total, bar.mode, bar.postfix) == (3, 4, mode, "3 kept")
        assert bar.line().startswith("work: img 3/4 (75%), 3 kept")
    bar.close()
    it = Progress(range(3), desc="iter", mode=mode, stream=out)
    assert list(it) == [0, 1, 2] and it.n == 3 and it.total == 3
    text = out.getvalue()
    assert ("phase two" in text) == (mode != "off")
    if mode == "off":
        assert text == ""
    elif mode == "lines":
        assert "work: img 4/4" not in text and "work: img 3/4 (75%), 3 kept" in text
        assert "iter: it 3/3 (100%)" in text
    else:
        assert "work" in text and "\r" in text             # tqdm redraws in place
    public = {n for n in dir(Progress) if not n.startswith("_")}
    assert {"update", "set_postfix", "set_postfix_str", "write", "close", "line"} <= public


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="progress mode 'verbose'"):
        Progress(total=1, mode="verbose")


def test_mode_choice(monkeypatch):
    monkeypatch.delenv("FADENN_PROGRESS", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert progress_mode() == "lines" and progress_mode(enabled=False) == "off"
    for value, mode in (("bar", "bar"), ("1", "bar"), ("lines", "lines"), ("0", "off"),
                        ("off", "off")):
        monkeypatch.setenv("FADENN_PROGRESS", value)
        assert progress_mode() == mode
    assert progress_mode(enabled=False) == "off"
