#!/usr/bin/env bash
# A normal (non-editable) install, used from another folder, as a new user would.
# Builds the wheel from this tree, installs it without dependencies into a throwaway venv that
# borrows the project venv's packages (TensorFlow is not downloaded again), then checks:
# --version, the named configs, the packaged face detector (run without TensorFlow), 5
# training steps with progress lines in a log file, and an export that other users can read.
# About a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
PY=${PY:-$SRC/.venv/bin/python}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fadenn-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
umask 022
export TF_CPP_MIN_LOG_LEVEL=2

# the venv's setuptools builds offline; without it pip fetches one (from its cache once seen)
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$TMP/dist" "$SRC" 2> /dev/null \
    || "$PY" -m pip wheel -q --no-deps -w "$TMP/dist" "$SRC"
rm -rf "$SRC/build"                                        # setuptools' scratch folder
"$PY" -m venv --without-pip "$TMP/venv"
V="$TMP/venv/bin/python"
"$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
    > "$("$V" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/_deps.pth"
"$PY" -m pip --python "$V" install -q --no-deps --no-index "$TMP"/dist/fadenn_tf-*.whl

mkdir "$TMP/elsewhere" && cd "$TMP/elsewhere"
B="$TMP/venv/bin"
fail() { echo "install check FAILED: $*" >&2; exit 1; }
"$V" - "$TMP/venv" <<'PY'
import sys
import fadenn_tf
from fadenn_tf.config import load_config
assert fadenn_tf.__file__.startswith(sys.argv[1]), f"imported from {fadenn_tf.__file__}"
print("installed:", fadenn_tf.__file__)
print("named configs:", [load_config(n).name for n in ("cpu", "paper", "real300w")])
PY
"$V" - "$TMP/venv" <<'PY' || fail "the packaged UltraFace face detector"
import sys
from fadenn_tf import detect
from fadenn_tf.data.synthetic import render_face
path = detect.ultraface_path()
assert str(path).startswith(sys.argv[1]), f"detector file from {path}"
img, _, _ = render_face(0, params={"pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0},
                                   "occluders": [], "others": [], "scale": 60.0,
                                   "center": [100.0, 100.0]}, image_size=200)
boxes, scores = detect.get_detector("default").detect(img)
assert len(boxes) == 1 and scores[0] >= 0.7, (boxes, scores)
assert "tensorflow" not in sys.modules, "the default detector imported TensorFlow"
print(f"default detector: {path.name} finds the synthetic face (score {scores[0]:.2f}), "
      "no TensorFlow import")
PY
"$B/fadenn-train" --version
"$B/fadenn-synth" --out data --train 24 --test 6 --videos 0 --size 96 --no-progress > /dev/null
"$B/fadenn-train" --stage fll --config cpu --data data --steps 5 --batch-size 8 --out run \
    > train.out 2> train.log || { cat train.out train.log; fail "training"; }
grep -q "train fll: step 5/5 (100%), loss=" train.log || { cat train.log; fail "no progress lines"; }
if grep -q $'\r' train.log; then fail "carriage returns in the log"; fi
echo "progress in the log:"; grep "train fll: step" train.log | sed 's/^/  /'
"$B/fadenn-export" --model run --out exported/fll > export.out 2>&1 || { cat export.out; fail "export"; }
"$V" - exported/fll/1 <<'PY' || fail "signature shapes"
import sys
import tensorflow as tf
for name, sig in tf.saved_model.load(sys.argv[1]).signatures.items():
    shape = sig.structured_outputs["noise_probs"].shape.as_list()
    assert shape == [None, 5], f"{name}: noise_probs {shape}"
print("signatures: noise_probs [B, 5]")
PY
unreadable=$(find exported run ! -perm -o=r)
[ -z "$unreadable" ] || fail "not readable by other users: $unreadable"
echo "export modes: $(stat -c '%A %n' exported/fll/1 exported/fll/1/saved_model.pb | tr '\n' ' ')"
echo "install check passed"
