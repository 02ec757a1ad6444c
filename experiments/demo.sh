#!/usr/bin/env bash
# `make demo`: every stage of the pipeline on the built-in synthetic faces, on the CPU.
# Data -> training (FLL, small CPU config) -> evaluation under the 13 noise conditions ->
# prediction on images -> export (SavedModel + TFLite). Outputs go to runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=runs/demo
STEPS=${DEMO_STEPS:-1500}
export TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$OUT"

echo "== 1. synthetic data (generated once into the cache) and FLL training ($STEPS steps)"
rm -rf "$OUT/train"
$PY -m fadenn_tf.train --stage fll --config cpu --steps "$STEPS" --workdir "$OUT/train"

echo "== 2. evaluation on the synthetic test split, clean + 12 noise conditions"
rm -rf "$OUT/eval"
$PY -m fadenn_tf.evaluate --model FLL="$OUT/train/fll/model.keras" --out "$OUT/eval"

echo "== 3. prediction on synthetic test images with the built-in detector"
echo "   (OpenCV's Haar cascade finds only about a quarter of the cartoon faces: 'no face' lines"
echo "    are expected here; on photos it does better, and you can pass --boxes or plug a detector)"
DATA=$($PY -c "from fadenn_tf.data.cache import resolve_data; print(resolve_data(None))")
rm -rf "$OUT/predict"
$PY -m fadenn_tf.predict "$DATA/helen/testset" --model "$OUT/train" --out "$OUT/predict" || true

echo "== 4. export: SavedModel for TF Serving + TFLite float32"
rm -rf "$OUT/exported"
$PY -m fadenn_tf.export --model "$OUT/train" --out "$OUT/exported/fadenn_fll" --tflite float32

echo "== done: see $OUT/ (eval/results.md, eval/*.png, predict/, exported/)"
