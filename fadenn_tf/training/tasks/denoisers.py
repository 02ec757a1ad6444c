"""Stages dae and experts: the denoisers (paper section III-D).

dae: the general denoiser of FADeNN-D, L2(clean, DAE(noisy)) on noisy crops at the IID side
S; validated by PSNR (dB against the clean crop) over the 12 noisy conditions.
experts: 4 specialised denoisers, expert k learning to remove noise type k only (paper
eq. 11); one step trains all four on the same clean batch, each with its own noise type at
a random level; validated by each expert's PSNR over its own type's 3 levels.
"""
from fadenn_tf.training.tasks.base import (Task, inference_fn, mean_psnr, models,
                                           validation_conditions)
from fadenn_tf.training.tasks.registry import register_task
from fadenn_tf.utils.lazy import lazy_import

losses = lazy_import("fadenn_tf.losses")                      # lazy: TensorFlow (train --help)
noise_mod = lazy_import("fadenn_tf.noise")                    # lazy: TensorFlow (train --help)
scoring = lazy_import("fadenn_tf.evaluation.scoring")         # lazy: TensorFlow (train --help)

NUM_EXPERTS = 4


@register_task("dae")
class DAETask(Task):
    noise = True

    def cores(self, cfg):
        return {"model": models.build_dae(cfg.model.iid)}

    def loss(self, cfg, parts):
        model = parts.model

        def compute_losses(batch):
            return losses.reconstruction_l2(model(batch["image"], training=True),
                                            batch["clean"]), {}
        return compute_losses

    def validation(self, ctx, parts, val):
        S, model = self.input_size(ctx.cfg), parts.model
        denoise = inference_fn(lambda x: model(x, training=False), S)
        conditions, spec = validation_conditions(), self.validation_spec(ctx.cfg)

        def evaluate(_step):
            res = scoring.evaluate_denoiser(denoise, val, conditions, spec)
            noisy = {k: v for k, v in res.items() if k != "clean"}
            return {"psnr_clean_output": res["clean"]["psnr_output"],
                    "psnr_noisy_input": mean_psnr(noisy, "psnr_input"),
                    "psnr_noisy_output": mean_psnr(noisy, "psnr_output"),
                    "psnr_unit": "dB vs clean crop, mean over 12 noisy conditions"}
        return evaluate


@register_task("experts")
class ExpertsTask(Task):
    expert_noise = True
    outputs = tuple(f"expert_{k}.keras" for k in range(1, NUM_EXPERTS + 1))
    init_sources = ("experts/expert_{k}.keras", "dae/model.keras")
    benchmarked = False

    def cores(self, cfg):
        return {f"expert_{k}": models.build_dae(cfg.model.iid, name=f"expert_{k}")
                for k in range(1, NUM_EXPERTS + 1)}

    def loss(self, cfg, parts):
        experts = parts.models

        def compute_losses(batch):
            clean = batch["clean"]                       # pixels 0..255
            total, logs = 0.0, {}
            for k, expert in enumerate(experts, start=1):
                noisy = batch["expert_images"][:, k - 1]   # type k at R, resized; 0..255
                loss_k = losses.reconstruction_l2(expert(noisy, training=True), clean)
                logs[f"l2_expert_{k}"] = loss_k
                total = total + loss_k
            return total, logs
        return compute_losses

    def validation(self, ctx, parts, val):
        S = self.input_size(ctx.cfg)
        fns = [inference_fn(lambda x, e=e: e(x, training=False), S) for e in parts.models]

        def evaluate(_step):
            out = {}
            for k, fn in enumerate(fns, start=1):
                res = scoring.evaluate_denoiser(fn, val, [(k, lv) for lv in noise_mod.LEVELS],
                                                self.validation_spec(ctx.cfg))
                out[f"psnr_expert_{k}_input"] = mean_psnr(res, "psnr_input")
                out[f"psnr_expert_{k}_output"] = mean_psnr(res, "psnr_output")
            out["psnr_unit"] = "dB vs clean crop, mean over the expert's own 3 levels"
            return out
        return evaluate
