"""Exponential moving average (EMA) of the trained weights, kept by the Keras optimizer
(`use_ema`, train.ema_momentum): validation runs on the averaged weights and the finished
stage saves them, while training goes on from the raw ones."""
import contextlib


def _inner(optimizer):
    """The optimizer that holds the averages (a LossScaleOptimizer wraps one)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def uses_ema(optimizer):
    return bool(getattr(_inner(optimizer), "use_ema", False))


@contextlib.contextmanager
def averaged_weights(optimizer):
    """Within the block the trained variables hold their EMA; the raw values come back after
    it. A no-op for an optimizer without EMA."""
    opt = _inner(optimizer)
    if not uses_ema(opt):
        yield
        return
    variables = list(opt._trainable_variables)
    raw = [v.numpy() for v in variables]
    opt.finalize_variable_values(variables)
    try:
        yield
    finally:
        for v, value in zip(variables, raw):
            v.assign(value)


def finalize(optimizer):
    """Write the EMA into the trained variables for good (before the stage saves its model)."""
    opt = _inner(optimizer)
    if uses_ema(opt):
        opt.finalize_variable_values(list(opt._trainable_variables))
