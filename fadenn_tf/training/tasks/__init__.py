"""Training stages as tasks (in the manner of TF Model Garden's base_task): one Task object
per stage owns its model parts, inputs, loss, validation, saved files and what it starts
from (base.py), and registers itself by name (registry.py). Every list of stage names in
the package is read from the registry.

    task = get_task("mtc")
    parts = task.fresh_parts(cfg)                # model parts (joint: fresh_parts(cfg, "M"))
    compute = task.loss(cfg, parts)              # batch -> (per-example loss [B], logs)

The stage runner (training.stages), `bench` (benchmark.train_speed) and `--init-from`
(training.transfer) use these tasks, so each stage is written once. The built-in stages:
landmarks.py (fll), denoisers.py (dae, experts), classifiers.py (stc, mtc), joint.py (joint,
and the recipe of `--stage all`). A new stage is a Task subclass decorated with
@register_task("name") in one of these modules (or in a new one imported below), plus its
train.steps entry in the configs if the default number of steps does not suit it.

Importing this package does not import TensorFlow (see base.py).
"""
from fadenn_tf.training.tasks.base import Parts, Task
from fadenn_tf.training.tasks.registry import (TASKS, all_stages, bench_models,
                                               check_needs, check_step_names, get_task,
                                               register_task, stage_of_folder,
                                               stage_outputs, task_names, unregister_task)
# the built-in stages register themselves, in this order
from fadenn_tf.training.tasks import landmarks, denoisers, classifiers, joint  # noqa: F401,E402

__all__ = ["Parts", "Task", "TASKS", "all_stages", "bench_models", "check_needs",
           "check_step_names", "get_task", "register_task", "stage_of_folder",
           "stage_outputs", "task_names", "unregister_task"]
