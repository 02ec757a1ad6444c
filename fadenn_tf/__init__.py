"""fadenn_tf: FADeNN face alignment (68 landmarks) with an internal image denoiser.

Pipeline: data -> noise -> models -> training -> evaluation -> export.
Heavy modules (TensorFlow) are imported lazily so that `import fadenn_tf` is cheap.
"""
__version__ = "0.1.0"


def load(path, **kwargs):
    """Load a trained model (workdir, .keras file or SavedModel) for prediction.

    See `fadenn_tf.predict.Predictor` for the returned object's API.
    """
    from fadenn_tf.predict import load as _load
    return _load(path, **kwargs)
