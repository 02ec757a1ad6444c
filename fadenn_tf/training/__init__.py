"""Staged training (paper section III-D): each IID part and the FLL alone, then jointly.

`tasks/` holds each stage as one registered Task (its model parts, inputs, loss, validation,
saved files and what it starts from; every list of stage names is read from its registry);
`stages.py` runs a task in a workdir (`run_stage`: data, optimizer, config.yaml and resume
checks, validation, saving) through `loop.py` (`make_train_step`, the one train step that
`bench` times too, and `run_loop`: tf.distribute, checkpoints, logs, resume) on the batches
of `stream.py` (`make_train_dataset`: jitter, augmentation, noise); `run.py` (`run_stages`)
runs a stage or a whole recipe as `train` does (the command: fadenn_tf.cli.train).
"""
