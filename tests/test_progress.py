"""Progress in a log: plain lines (count/total, caller's figures, rate, ETA), no bar."""
import io
import sys

from fadenn_tf.utils.progress import LineProgress, progress


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
