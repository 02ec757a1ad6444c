"""fadenn_tf: FADeNN face alignment (68 landmarks) with an internal image denoiser.

Pipeline: data -> noise -> models -> training -> evaluation -> export.
Heavy modules (TensorFlow) are imported lazily so that `import fadenn_tf` is cheap.
"""
from fadenn_tf.version import __version__  # noqa: F401


def load(path, **kwargs):
    """Load a trained model (workdir, .keras file or SavedModel) for prediction.

    See `fadenn_tf.inference.Predictor` for the returned object's API.
    """
    from fadenn_tf.inference.predictor import load as _load  # lazy: `import fadenn_tf` stays light
    return _load(path, **kwargs)


def __getattr__(name):   # fadenn_tf.Predictor etc., imported on first use
    if name in ("Predictor", "ImageResult", "FaceResult", "load_any"):
        import fadenn_tf.inference  # lazy: `import fadenn_tf` stays light
        return getattr(fadenn_tf.inference, name)
    raise AttributeError(f"module 'fadenn_tf' has no attribute {name!r}")
