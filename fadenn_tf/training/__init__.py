"""Staged training (paper section III-D): each IID part and the FLL alone, then jointly.

`loop.py` is the shared core (tf.function step, tf.distribute, checkpoints, logs, resume);
`tasks.py` holds each stage as a task (its model parts, inputs and loss); `stages.py` runs a
task in a workdir (data, validation, saved models) on the batches of `stream.py`
(make_train_dataset: jitter, augmentation, noise); `run.py` (`run_stages`) runs a stage or a
whole recipe as `train` does (the command: fadenn_tf.cli.train).
"""
