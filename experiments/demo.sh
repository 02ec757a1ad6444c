#!/usr/bin/env bash
# `make demo`: what the project is about, on the built-in synthetic faces, on the CPU, in about
# 5 minutes on 2 cores. Trains FADeNN-D (denoising auto-encoder + landmark localiser, then
# both jointly), shows the denoiser at work (noisy crop -> denoised -> landmarks), measures
# robustness under the paper's 13 noise conditions against the FLL alone, and predicts on
# test images. Outputs go to runs/demo/. Options (environment):
#   DEMO_STEPS=N   steps for every stage instead of the demo config's (300 / 700 / 300)
#   DEMO_EXPORT=1  also export the model (SavedModel + TFLite float32; about a minute more)
#   PY=python      the interpreter (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=runs/demo
STEPS=()
if [ -n "${DEMO_STEPS:-}" ]; then STEPS=(--steps "$DEMO_STEPS"); fi
export TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$OUT"
t0=$SECONDS

echo "== 1. FADeNN-D on synthetic faces: the DAE (denoiser), the FLL (landmarks), then jointly"
rm -rf "$OUT/train"
$PY -m fadenn_tf.train --stage all --variant D --config demo "${STEPS[@]}" --out "$OUT/train"

echo "== 2. the denoiser at work: noisy crop -> denoised -> landmarks, 5 conditions"
$PY experiments/demo_figure.py --model "$OUT/train" --out "$OUT/denoiser.png"

echo "== 3. robustness: clean + 12 noise conditions, FADeNN-D vs the FLL alone (100 test faces)"
rm -rf "$OUT/eval"
$PY -m fadenn_tf.evaluate --model FLL="$OUT/train/fll/model.keras" \
    --model FADeNN-D="$OUT/train/joint-D/model.keras" --max-images 100 --out "$OUT/eval"

echo "== 4. prediction on whole test images with the built-in detector"
echo "   (OpenCV's Haar cascade misses many cartoon faces: 'no face' lines are expected here;"
echo "    on photos it does better, and predict --boxes FILE gives boxes yourself)"
DATA=$($PY -c "from fadenn_tf.data.cache import resolve_data; print(resolve_data(None))")
rm -rf "$OUT/predict" "$OUT/images"
mkdir -p "$OUT/images"
find "$DATA/helen/testset" -name "*.jpg" | sort | head -n 12 | xargs -I{} cp {} "$OUT/images/"
$PY -m fadenn_tf.predict "$OUT/images" --model "$OUT/train" --out "$OUT/predict" || true

echo "== 5. the shipped real-face FLL (pretrained-fll, MODEL_CARD.md) on the same images"
echo "   (trained on real photos, not on these cartoons: expect rough fits on them)"
rm -rf "$OUT/predict-pretrained"
$PY -m fadenn_tf.predict "$OUT/images" --model pretrained-fll --out "$OUT/predict-pretrained" \
    || true

if [ "${DEMO_EXPORT:-0}" = 1 ]; then
    echo "== 6. export: SavedModel for TF Serving + TFLite float32"
    rm -rf "$OUT/exported"
    $PY -m fadenn_tf.export --model "$OUT/train" --out "$OUT/exported/fadenn_d" --tflite float32
fi

echo "== done in $((SECONDS - t0)) s. Look at:"
echo "   $OUT/denoiser.png            noisy crop -> denoised -> landmarks"
echo "   $OUT/eval/auc_vs_level.png   robustness: AUC per noise type and level"
echo "   $OUT/eval/results.md         the table; $OUT/eval/landmarks_*.png per model"
echo "   $OUT/predict/                overlays and .pts of the predicted test images"
echo "   $OUT/predict-pretrained/     the same with the shipped pretrained-fll"
