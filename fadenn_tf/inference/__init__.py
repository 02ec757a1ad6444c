"""Inference: load any trained model and predict landmarks on images of any size.

crop_model (CropModel: what every model on crops offers, with its own crop read from its
metadata: fit_boxes(image, boxes) -> BoxFits in image pixels), model (load_any, LoadedModel: a
workdir, .keras or SavedModel on 0..255 crops; resolve_model_path, re-exported from
fadenn_tf.deploy.saved_model, which owns it), litert (LiteRTModel: the same on a TFLite file
run by LiteRT through fadenn_tf.deploy.litert), routed (RoutedLiteRTModel: FADeNN-S/M as
TFLite parts that run only the chosen expert), litert_load (load_litert: picks one of those,
converting other models with fadenn_tf.deploy), predictor (Predictor, load: detector or
given boxes -> the model's crop -> model -> image coordinates), results (ImageResult,
FaceResult), outputs (the files of `predict`), flip_test (FlipAveraged: test-time flip averaging).
Names are imported on first use, so `import fadenn_tf.inference` loads no TensorFlow.
"""
import importlib

_HOMES = {"CropModel": "crop_model", "BoxFits": "crop_model", "FaceCrops": "crop_model",
          "LoadedModel": "model", "load_any": "model",
          "resolve_model_path": "model",
          "LiteRTModel": "litert", "load_litert": "litert_load",
          "RoutedLiteRTModel": "routed",
          "Predictor": "predictor", "load": "predictor", "to_rgb_uint8": "predictor",
          "BACKENDS": "predictor", "FlipAveraged": "flip_test",
          "FaceResult": "results", "ImageResult": "results"}


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f"fadenn_tf.inference.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'fadenn_tf.inference' has no attribute {name!r}")


__all__ = sorted(_HOMES)
