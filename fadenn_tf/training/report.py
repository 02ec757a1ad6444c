"""What `train` prints after each stage: the validation figures of its result dict."""
from fadenn_tf import metrics
from fadenn_tf.training.tasks import get_task


def print_result(stage, variant, result, desc):
    """Print the figures of `result` (run_stage's dict) of `stage` of FADeNN-`variant`,
    validated on `desc` (the data description)."""
    norm = metrics.NORMALIZER_INFO[metrics.DEFAULT_NORMALIZER]
    t = metrics.DEFAULT_THRESHOLD
    what = ("FLL fine-tuned on noisy crops, the control" if variant == "fll"
            else f"FADeNN-{variant}")
    print(f"\n== stage {stage}{' (' + what + ')' if get_task(stage).per_variant else ''}: "
          f"validation on {desc}")
    if "nme_clean" in result:
        print(f"   NME normalised by the {norm}; AUC and FR at {t}; 'noisy' pools the 12 "
              f"noise conditions (4 types x 3 levels)")
        rows = [("model", "")]
        if "mean_shape_nme_clean" in result:
            rows.append(("mean-shape baseline", "mean_shape_"))
        if "fll_baseline_nme_clean" in result:
            rows.append(("FLL alone (before joint)", "fll_baseline_"))
        for label, pre in rows:
            parts = []
            for cond in ("clean", "noisy"):
                k = f"{pre}nme_{cond}"
                if k in result:
                    parts.append(f"{cond}: NME {result[k]:.4f}"
                                 + (f" AUC@{t} {result[f'{pre}auc_{cond}']:.3f}"
                                    if f"{pre}auc_{cond}" in result else "")
                                 + (f" FR@{t} {result[f'{pre}fr_{cond}']:.3f}"
                                    if f"{pre}fr_{cond}" in result else ""))
            print(f"   {label:<26} " + " | ".join(parts))
    elif "accuracy" in result:
        print(f"   noise-class accuracy {result['accuracy']:.3f} over {result['accuracy_over']}")
    elif "psnr_noisy_output" in result:
        print(f"   PSNR ({result['psnr_unit']}): noisy input {result['psnr_noisy_input']:.2f} -> "
              f"denoised {result['psnr_noisy_output']:.2f}; clean input through the DAE "
              f"{result['psnr_clean_output']:.2f}")
    elif any(k.startswith("psnr_expert") for k in result):
        for k in range(1, 5):
            print(f"   expert {k}: PSNR input {result[f'psnr_expert_{k}_input']:.2f} -> output "
                  f"{result[f'psnr_expert_{k}_output']:.2f} ({result['psnr_unit']})")
    elif result.get("note"):
        print(f"   {result['note']}")
    elif result:  # a stage of other figures: each by its name
        print("   " + "; ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in result.items() if isinstance(v, (int, float, str))))
