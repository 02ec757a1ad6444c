"""The one registry of training stages: name -> Task. Every list of stage names is read from
it: `train --stage` and its help, the stages of `--stage all`, the keys train.steps accepts,
`--init-from`'s sources, the models `bench` times.

    @register_task("fll")
    class FLLTask(Task): ...

A name is registered once; unregister_task removes it (tests register stages of their own).
"""
from pathlib import Path

from fadenn_tf.errors import ConfigError

TASKS = {}     # name -> Task instance, in registration order


def register_task(name):
    """Class decorator: register an instance of the decorated Task subclass as stage `name`
    (an identifier, not "all"). Raises ValueError if the name is taken or not valid."""
    if not isinstance(name, str) or not name.isidentifier() or name == "all":
        raise ValueError(f"stage name must be an identifier other than 'all', got {name!r}")

    def register(cls):
        if name in TASKS:
            raise ValueError(f"a stage named {name!r} is already registered ({TASKS[name]!r})")
        task = cls()
        task.name = name
        TASKS[name] = task
        return cls
    return register


def unregister_task(name):
    """Remove stage `name` from the registry (KeyError if it is not there)."""
    del TASKS[name]


def task_names():
    """The registered stage names, in registration order."""
    return tuple(TASKS)


def get_task(name):
    """The Task of stage `name`; ConfigError naming the registered stages otherwise."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown stage {name!r}: choose one of "
                          f"{', '.join(task_names())}") from None


def all_stages(variant):
    """The stages `--stage all` runs for FADeNN-`variant` (normalised), in order."""
    for task in TASKS.values():
        recipe = task.recipe(variant)
        if recipe is not None:
            return list(recipe)
    raise ConfigError("no registered stage gives the recipe of --stage all")


def check_step_names(train_cfg, where="<config>"):
    """ConfigError naming `where` and the key if train.steps (TrainConfig.steps) has an entry
    for a stage that is not registered."""
    unknown = sorted(set(train_cfg.steps) - set(TASKS))
    if unknown:
        raise ConfigError(f"{where}: train.steps: unknown stages {unknown} "
                          f"(known: {', '.join(task_names())})")


def stage_outputs(workdir, stage, variant="M"):
    """Files a finished stage leaves behind in `workdir` (what later stages load)."""
    return get_task(stage).output_paths(workdir, variant)


def check_needs(workdir, stage, variant):
    """ConfigError naming the stages and files `stage` of FADeNN-`variant` needs but cannot
    find in `workdir`."""
    task = get_task(stage)
    needs = task.needs(variant)
    missing = [(s, p) for s in needs for p in stage_outputs(workdir, s, variant)
               if not p.is_file()]
    if missing:
        what = f"stage {stage!r}" + (f" of FADeNN-{variant}" if task.per_variant else "")
        lines = "\n".join(f"  stage {s!r}: {p}" for s, p in missing)
        raise ConfigError(
            f"{what} needs the results of stages {', '.join(needs)}; not found:\n{lines}\n"
            f"run them first (python -m fadenn_tf.train --stage STAGE with the same "
            f"--workdir) or use --stage all --variant {variant}")


def bench_models():
    """{name: (task, variant)} of the train steps `bench` times: each benchmarked task under
    its folder name (joint: joint-M)."""
    return {t.folder(t.bench_variant): (t, t.bench_variant) for t in TASKS.values()
            if t.benchmarked}


def stage_of_folder(folder):
    """The Task whose (non-per-variant) folder is named like `folder` (a Path or name), or
    None."""
    task = TASKS.get(Path(folder).name)
    return task if task is not None and not task.per_variant else None
