"""Every command runs its smallest job with its output going to a file, to a pipe, and with
FADENN_PROGRESS forcing each progress mode (bar, lines, 0); each run must exit 0, write its
outputs and report progress as the mode says. The commands run in this process (TensorFlow
is loaded once) with sys.stdout and sys.stderr replaced by a real file or the write end of
an os.pipe, which is what decides the progress mode; test_degrade_in_a_shell_pipeline runs
real shell redirections. The model is the test run's shared tiny trained FLL."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fixtures import make_300vw, make_300w
from test_training import tiny, write_yaml

ROOT = Path(__file__).resolve().parents[1]
WAYS = [("file", None), ("pipe", None), ("file", "bar"), ("file", "lines"), ("pipe", "0")]


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_run):
    """Fixture data (6 x 2 stills, a 20-frame video) and a tiny trained FLL (the test run's
    shared tiny run, conftest)."""
    tmp = tmp_path_factory.mktemp("matrix")
    make_300w(tmp / "300w", n_per_folder=2, size=(64, 80))
    make_300vw(tmp / "vw", video_ids=("114",), frames=20, size=(64, 80))
    cfg = write_yaml(tmp / "tiny.yaml", tiny(data={"max_val_images": 2}))
    image = next((tmp / "300w" / "afw").glob("*.jpg"))
    (tmp / "boxes.json").write_text(json.dumps({image.name: [16, 12, 64, 56]}))
    return {"tmp": tmp, "cfg": cfg, "data": tmp / "300w", "image": image,
            "video": tmp / "vw" / "114" / "vid.avi",
            "model": tiny_run["workdir"] / "fll" / "model.keras"}


def _jobs(w, out):
    """{command: (argv, [files it must write], progress line prefix or None)}."""
    m = str(w["model"])
    return {
        "predict": ([str(w["image"]), "--model", m, "--out", str(out), "--boxes",
                     str(w["tmp"] / "boxes.json")], ["summary.json", "image_001.pts"],
                    "predicting: img 1/1"),
        "track": ([str(w["video"]), "--model", m, "--out", str(out), "--init-box",
                   "16,12,64,56", "--failure-detector", "none", "--no-overlay"],
                  ["track_log.json", "annot/000001.pts"], "tracking: frame 2/20 (10%)"),
        "evaluate": (["--model", f"m={m}", "--data", str(w["data"]), "--split", "full",
                      "--conditions", "clean", "--grid-images", "0", "--out", str(out)],
                     ["results.json"], "evaluating: batch 1/1 (100%)"),
        "degrade": (["--data", str(w["data"]), "--out", str(out), "--conditions", "blur-1",
                     "--reference-size", "32", "--workers", "1"],
                    ["manifest.json", "crops.json", "blur-1/afw/image_001.png"],
                    "degrading: img 12/12 (100%)"),
        "export": (["--model", m, "--out", str(out)], ["1/saved_model.pb"],
                   "export: step 1/1 (100%)"),
        "train": (["--stage", "fll", "--config", str(w["cfg"]), "--data", str(w["data"]),
                   "--workdir", str(out), "--steps", "1"], ["fll/model.keras"],
                  "train fll: step 1/1 (100%)"),
        "synth": (["--out", str(out / "s"), "--train", "3", "--test", "3", "--videos", "0",
                   "--size", "48"], ["s/manifest.json"], "synthetic faces: item 6/6 (100%)"),
        "bench": (["--quick", "--sections", "peak", "--out", str(out)], ["bench.json"],
                  "bench: phase 1"),
        "train_failure_detector": (["--data", str(w["data"]), "--out", str(out / "fd.npz"),
                                    "--positives", "1", "--negatives", "1"], ["fd.npz"],
                                   "features: img 5/5 (100%)"),
    }


class _Pipe:
    """A real pipe: its write end as a text stream, its read end drained by a thread."""

    def __init__(self):
        r, wfd = os.pipe()
        self.stream = os.fdopen(wfd, "w", buffering=1)
        self.chunks = []
        self._reader = threading.Thread(target=self._drain, args=(os.fdopen(r, "rb"),))
        self._reader.start()

    def _drain(self, f):
        with f:
            for chunk in iter(lambda: f.read1(65536), b""):
                self.chunks.append(chunk)

    def text(self):
        self.stream.close()
        self._reader.join(timeout=30)
        return b"".join(self.chunks).decode("utf-8", "replace")


def run_redirected(main, argv, way, progress, tmp_path, monkeypatch):
    """(exit status, everything the command printed) of main(argv) with stdout and stderr
    going to one real file or one real pipe, FADENN_PROGRESS set to `progress`."""
    if progress is None:
        monkeypatch.delenv("FADENN_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("FADENN_PROGRESS", progress)
    if way == "file":
        sink = open(tmp_path / "log.txt", "w+", encoding="utf-8")
    else:
        sink = _Pipe()
    stream = sink if way == "file" else sink.stream
    assert not stream.isatty()
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        rc = main(argv)
    finally:
        monkeypatch.undo()
        if way == "file":
            sink.close()
    text = (tmp_path / "log.txt").read_text() if way == "file" else sink.text()
    return rc, text


COMMANDS = ["predict", "track", "evaluate", "degrade", "export", "train", "synth", "bench",
            "train_failure_detector"]
HEAVY = ("train", "export")      # 5-15 s a run: one way in the quick suite, the rest slow


def _cases():
    for command in COMMANDS:
        for way, progress in WAYS:
            slow = command in HEAVY and (way, progress) != ("pipe", None)
            yield pytest.param(command, way, progress,
                               id=f"{command}-{way}-{progress or 'auto'}",
                               marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("command,way,progress", list(_cases()))
def test_command_in_a_log_a_pipe_and_every_progress_mode(world, command, way, progress,
                                                        tmp_path, monkeypatch):
    import importlib
    main = importlib.import_module(f"fadenn_tf.{command}").main
    out = tmp_path / "out"
    argv, files, line = _jobs(world, out)[command]
    rc, text = run_redirected(main, argv, way, progress, tmp_path, monkeypatch)
    assert rc == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    for f in files:
        assert (out / f).is_file(), f"{command}: {f} missing\n{text[-2000:]}"
    mode = {"0": "off", None: "lines"}.get(progress, progress)
    if line is not None:
        shown = line if mode == "lines" else line.split(":")[0] + ":"   # the bar: its label
        assert (shown in text) == (mode != "off"), text[-2000:]
    if mode != "bar":
        assert "\r" not in text          # no bar redraws in a log
    if command == "track" and mode == "lines":    # a line every 10% of the frames, with ETA
        lines = [x for x in text.splitlines() if x.startswith("tracking: frame ")]
        assert len(lines) == 10 and all("ETA" in x for x in lines[:-1]), lines


def _shell(cmd, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("FADENN_PROGRESS", None)
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("source", ["300w", "300vw"])
def test_degrade_in_a_shell_pipeline_and_a_log_file(world, tmp_path, source):
    """`degrade ... 2>&1 | tail` (stills) and `> log 2>&1` (videos), as real shells run them."""
    py = sys.executable
    if source == "300w":
        data = world["data"]
        res = _shell(f"{py} -m fadenn_tf.degrade --data {data} --out {tmp_path / 'o'} "
                     f"--conditions blur-1 --reference-size 32 --workers 1 2>&1 | tail -n 3",
                     tmp_path)
        text = res.stdout
        n = 12
    else:
        data = world["tmp"] / "vw"
        res = _shell(f"{py} -m fadenn_tf.degrade --data {data} --out {tmp_path / 'o'} "
                     f"--conditions blur-1 > {tmp_path / 'log'} 2>&1", tmp_path)
        text = (tmp_path / "log").read_text()
        n = 1
    assert res.returncode == 0, text + res.stderr
    assert "Traceback" not in text and "\r" not in text
    unit = "img" if source == "300w" else "video"
    assert f"degrading: {unit} {n}/{n} (100%)" in text, text
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest[f"n_{'images' if source == '300w' else 'videos'}"] == n
