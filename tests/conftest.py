"""Shared test set-up: quiet TensorFlow, deterministic seeds, small helpers.

`make test` runs the suite in 2 processes (pytest-xdist); plain `pytest` (one process) works
the same way."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

# Scheduling under xdist (`make test`: -n 2 --dist loadfile --no-loadscope-reorder, with the
# scheduler below): a test file is one unit of work (its module fixtures are built once, on
# one worker), except the tests named in ALONE, which need no expensive module fixture and
# are a unit of their own, so the two workers share a long file. Units are handed out heavy
# files first (by total time on 2 cores), so a long one does not start last while the other
# worker sits idle. A test renamed out of ALONE runs with its file: slower, never wrong.
# One process (plain pytest) keeps pytest's order.
HEAVY_FIRST = ("test_training.py", "test_export.py", "test_write_failures.py",
               "test_kill_resume.py", "test_faults.py", "test_bench.py",
               "test_command_matrix.py", "test_models.py", "test_model_format.py",
               "test_routed.py", "test_export_crop_scale.py", "test_evaluate.py",
               "test_heatmap_head.py", "test_synthetic.py", "test_degrade.py")
ALONE = {
    "test_training.py": (
        "test_multiworker_two_local_workers_on_loopback",
        "test_mirrored_two_logical_cpus_matches_one_device_and_resumes",
        "test_resume_after_kill9_continues_step_counter_and_optimizer",
        "test_ctrl_c_saves_checkpoint_and_restart_without_resume_is_refused",
        "test_init_from_copies_every_layer_and_wing_trains",
        "test_bf16_trains_without_loss_scaling_and_saves_float32",
        "test_stage_experts_trains_each_expert",
        "test_val_fraction_zero_trains_on_every_image_without_validation",
        "test_mixed_precision_runs_with_loss_scaling", "test_jit_train_step_runs"),
    "test_export.py": ("test_cli_all_variants_with_report", "test_export_other_variants"),
    "test_faults.py": (
        "test_bad_state_file_resumes_from_ckpt_files_and_guards_fresh_run",
        "test_truncated_latest_checkpoint_falls_back_with_warning",
        "test_every_checkpoint_unreadable_is_an_error_not_a_restart",
        "test_resume_with_other_data_or_config_is_refused_unless_forced",
        "test_train_seed_also_seeds_the_weights"),
    "test_write_failures.py": "*", "test_kill_resume.py": "*", "test_bench.py": "*",
}


def work_unit(nodeid):
    """The unit of work of a test under xdist: its file, or itself if ALONE names it."""
    path, _, name = nodeid.partition("::")
    alone = ALONE.get(path.rsplit("/", 1)[-1], ())
    return nodeid if alone == "*" or name.split("[")[0] in alone else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's file-by-file scheduling, with the units of work of `work_unit`."""
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return work_unit(nodeid)
    return Units(config, log)


def pytest_collection_modifyitems(config, items):
    """Under xdist: heavy files first (a stable sort: test order inside a file is kept)."""
    if not hasattr(config, "workerinput"):     # not an xdist worker
        return
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def _shared_dir(tmp_path_factory, name):
    """A folder `name` for the whole test run: in the run's temporary folder, which under
    xdist is the parent of every worker's own (<run>/popen-gwN). (Not the environment's
    PYTEST_XDIST_WORKER: a pytest a test starts in a child process inherits it.)"""
    base = tmp_path_factory.getbasetemp()
    worker = base.name.startswith("popen-gw")
    folder = (base.parent if worker else base) / name
    folder.mkdir(exist_ok=True)
    return folder


def _once(folder, make):
    """Call make() unless folder/done exists; under xdist one worker does it while the
    others wait for it (a lock file)."""
    import fcntl
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "done").exists():
            make()
            (folder / "done").touch()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A 300-W fixture tree of 24 48x48 stills and the tiny config for it (checkpoints every
    2 steps, 3 kept, validation at the end on 4 images), for the whole test run:
    {"data", "cfg"}. Read only."""
    from fixtures import make_300w
    from test_training import tiny, write_yaml
    root = _shared_dir(tmp_path_factory, "tiny-data")
    out = {"data": root / "300w", "cfg": root / "tiny.yaml"}

    def make():
        make_300w(out["data"], n_per_folder=4, size=(48, 48))
        write_yaml(out["cfg"], tiny(train={"checkpoint_every": 2, "eval_every": 1000,
                                           "keep_checkpoints": 3},
                                    data={"max_val_images": 4}))
    _once(root, make)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data):
    """One tiny trained workdir for the whole test run: `train --stage fll --steps 4` on
    tiny_data (checkpoints 2 and 4, fll/model.keras, one metrics line).
    {"data", "cfg", "workdir"}; a test that changes the workdir works on a copy."""
    from fadenn_tf import train
    root = _shared_dir(tmp_path_factory, "tiny-run")
    out = dict(tiny_data, workdir=root / "w")
    _once(root, lambda: _check_rc(train.main(
        ["--stage", "fll", "--config", str(out["cfg"]), "--data", str(out["data"]),
         "--workdir", str(out["workdir"]), "--no-progress", "--steps", "4"])))
    return out


def _check_rc(rc):
    assert rc == 0, f"the shared tiny training run exited {rc}"


@pytest.fixture(scope="session", autouse=True)
def conversion_cache_dir(tmp_path_factory):
    """One TFLite conversion cache (deploy.conversion_cache) for the whole test run, set
    before any other fixture: a model file converted by one test (or a command a test runs
    in a subprocess) is read back by the next instead of converted again, and nothing lands
    in the user's ~/.cache. Under xdist the workers share it (a folder beside their own
    temporary folders; entries are written atomically). Entries are keyed by the model
    file's bytes, so tests never see another model's conversion. Tests of the cache itself
    set FADENN_TF_CACHE_DIR to a folder of their own (monkeypatch restores this one after
    them)."""
    with pytest.MonkeyPatch.context() as mp:
        root = _shared_dir(tmp_path_factory, "litert-cache")
        mp.setenv("FADENN_TF_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Six annotated 150x190 face photos (a 300-W-style folder) as Samples."""
    from fadenn_tf.data.datasets import index_folder
    from tests.fixtures import make_folder
    root = tmp_path_factory.mktemp("faces")
    make_folder(root, n=3, size=(150, 190), ext=".png")
    samples, report = index_folder(root)
    assert len(samples) == 6 and not report.skipped
    return samples
