"""Staged training (paper section III-D): each IID part and the FLL alone, then jointly.

`loop.py` is the shared core (tf.function step, tf.distribute, checkpoints, logs, resume);
`stages.py` says what each stage builds, feeds and optimises; `train.py` is the CLI.
"""
