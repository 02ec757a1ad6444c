"""Named experiment configs shipped with the package (`--config cpu`, `paper`, `real300w`).

Found through `importlib.resources`, so they load from an installed wheel as well as from a
source checkout. See `fadenn_tf.config.load_config`.
"""
