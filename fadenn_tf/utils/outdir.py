"""An output folder holding an earlier run: every command treats it the same way.

A command that writes a folder (predict, track, evaluate) names the files a run of it
writes (`OutputKind`). If `--out` already holds such files it stops with an error naming
them (exit 2), unless given `--overwrite`: then it deletes them first, so the folder
never mixes two runs while a summary describes only the last. Call it while holding the
folder's lock (fadenn_tf.utils.lock), so no other writer is using those files. Files of
other kinds in the folder are left alone.
"""
import shutil
from dataclasses import dataclass
from pathlib import Path

from fadenn_tf.errors import FadennError


class EarlierRunError(FadennError):
    """The output folder holds an earlier run and --overwrite was not given."""


@dataclass(frozen=True)
class OutputKind:
    """What a run of `command` leaves in its folder: `files` (names directly in it),
    `folders` (sub-folders it fills), `patterns` (glob patterns searched recursively),
    `marked` (a file name: every direct sub-folder holding it is a run's output folder)."""
    command: str
    files: tuple = ()
    folders: tuple = ()
    patterns: tuple = ()
    marked: str = ""

    def found_in(self, folder):
        """The paths of an earlier run in `folder`, sorted."""
        folder = Path(folder)
        if not folder.is_dir():
            return []
        found = {folder / f for f in self.files if (folder / f).exists()}
        found |= {folder / d for d in self.folders if (folder / d).is_dir()}
        for pattern in self.patterns:
            found |= {p for p in folder.rglob(pattern) if p.is_file()}
        if self.marked:
            found |= {d for d in folder.iterdir() if (d / self.marked).is_file()}
        return sorted(p for p in found if not any(q in p.parents for q in found))


def prepare_output(folder, kind, overwrite=False):
    """Make `folder` ready for a new run of `kind`: raise EarlierRunError naming what an
    earlier run left (at most 3 paths and the count), or with `overwrite` delete it.
    Returns the deleted paths."""
    found = kind.found_in(folder)
    if not found:
        return []
    if not overwrite:
        shown = ", ".join(p.relative_to(folder).as_posix() for p in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise EarlierRunError(
            f"{folder}: holds the outputs of an earlier {kind.command} run ({shown}{more}); "
            f"pass --overwrite to delete them and start again, or choose another --out")
    for p in found:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    return found


PREDICT_OUTPUTS = OutputKind("predict", files=("summary.json",),
                             patterns=("*.pts", "*_overlay.png"))
TRACK_OUTPUTS = OutputKind("track", files=("track_log.json", "overlay.avi",
                                           "tracking_results.json"), folders=("annot",),
                           marked="track_log.json")
EVALUATE_OUTPUTS = OutputKind("evaluate", files=("results.json", "errors.csv", "results.md",
                                                 "auc_vs_level.png", "ced.png"),
                              patterns=("landmarks_*.png", "confusion_*.png"))
