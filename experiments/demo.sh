#!/usr/bin/env bash
# `make demo`: what the project is about, on the built-in synthetic faces, on the CPU, in about
# 5 minutes on 2 cores. Trains FADeNN-S (4 denoisers, each for one noise type; a noise
# classifier that picks one, or none for a clean crop; the landmark localiser; then a short
# joint fine-tuning), shows the denoisers at work (noisy crop -> denoised -> landmarks, with
# the PSNR before and after for every noise condition), measures robustness under the paper's
# 13 noise conditions against the FLL alone, and predicts on test images.
# Outputs go to runs/demo/. Options (environment):
#   DEMO_STEPS=N   steps for every stage instead of the demo config's (300 / 200 / 600 / 60)
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
TRAIN=("$PY" -m fadenn_tf.train --config demo --variant S --out "$OUT/train")

echo "== 1. FADeNN-S on synthetic faces: 4 denoisers, the noise classifier, the FLL, then jointly"
rm -rf "$OUT/train"
for stage in experts stc fll; do
    "${TRAIN[@]}" --stage "$stage" "${STEPS[@]}"
done
# the joint fine-tuning at a tenth of the learning rate: at 1e-3 its first steps undo the
# denoisers (fadenn_tf/configs/demo.yaml)
"${TRAIN[@]}" --stage joint "${STEPS[@]}" --set train.learning_rate=1e-4

echo "== 2. the denoisers at work: PSNR before -> after per noise condition, and a picture"
$PY experiments/demo_figure.py --model "FADeNN-S=$OUT/train" --reference-size 64 \
    --table-faces 60 --out "$OUT/denoiser.png"

echo "== 3. robustness: clean + 12 noise conditions, FADeNN-S vs the FLL alone (60 test faces)"
rm -rf "$OUT/eval"
$PY -m fadenn_tf.evaluate --model FLL="$OUT/train/fll/model.keras" \
    --model FADeNN-S="$OUT/train/joint-S/model.keras" --config demo --max-images 60 \
    --out "$OUT/eval"

DETECTOR=$($PY -c "from fadenn_tf.detect.registry import default_detector_name as d; print(d())")
echo "== 4. prediction on whole test images, faces found by the default detector ($DETECTOR)"
echo "   (a detector made for photos may miss some of these cartoon faces: 'no face' lines"
echo "    can appear; predict --boxes FILE gives the boxes yourself)"
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
    $PY -m fadenn_tf.export --model "$OUT/train" --out "$OUT/exported/fadenn_s" --tflite float32
fi

echo "== done in $((SECONDS - t0)) s. Look at:"
echo "   $OUT/denoiser.png            noisy crop -> denoised -> landmarks, PSNR on each crop"
echo "   $OUT/eval/auc_vs_level.png   robustness: AUC per noise type and level"
echo "   $OUT/eval/results.md         the table; $OUT/eval/landmarks_*.png per model"
echo "   $OUT/predict/                overlays and .pts of the predicted test images"
echo "   $OUT/predict-pretrained/     the same with the shipped pretrained-fll"
