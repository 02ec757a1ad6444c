"""Conventions shared by every command: program name, --version, --no-progress, aliases.

Imports nothing heavy, so `--help` and `--version` answer without loading TensorFlow.
"""
import argparse
import os
import sys

EXIT_CODES_FACES = ("exit status: 0 when at least one face was found; 1 when the command ran "
                    "but found no face in any input (each unreadable input is named on "
                    "stderr); 2 on bad arguments or an unusable model or file; 130 when "
                    "interrupted.")


def prog_name(module):
    """The program as the user invoked it: `fadenn-train` or `python -m fadenn_tf.train`."""
    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if invoked.startswith("fadenn-"):
        return invoked
    return f"python -m fadenn_tf.{module}"


def make_parser(module, description=None, raw=True, version_value=None, **kwargs):
    """An ArgumentParser named as invoked, with --version.

    version_value: (dest, type) when `--version VALUE` was once an option of this command:
    a bare --version prints the version, --version VALUE still sets `dest` (former use).
    """
    if raw:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    p = argparse.ArgumentParser(prog=prog_name(module), description=description, **kwargs)
    if version_value:
        p.add_argument("--version", nargs="?", action=_VersionOrValue, dest=version_value[0],
                       type=version_value[1], default=argparse.SUPPRESS, metavar="N",
                       help="print the version and exit (with a value: the former name of "
                            f"--{version_value[0].replace('_', '-')})")
    else:
        p.add_argument("--version", action="version", version=version_text(p.prog),
                       help="print the version and exit")
    return p


def version_text(prog):
    from fadenn_tf import __version__
    return f"{prog} (fadenn_tf {__version__})"


class _VersionOrValue(argparse.Action):
    def __call__(self, parser, namespace, value, option_string=None):
        if value is None:
            print(version_text(parser.prog))
            parser.exit()
        setattr(namespace, self.dest, value)


def add_no_progress(p):
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (terminal) or progress lines (log file)")


def add_alias(p, old, new, **kwargs):
    """Accept the former option name `old` for `new` (hidden from --help)."""
    action = next(a for a in p._actions if new in a.option_strings)
    kw = {"dest": action.dest, "help": argparse.SUPPRESS}
    if action.nargs == 0:
        kw["action"] = "store_const"
        kw["const"] = action.const if action.const is not None else True
    else:
        kw.update(type=action.type, choices=action.choices, nargs=action.nargs)
        if isinstance(action, argparse._AppendAction):
            kw["action"] = "append"
    kw.update(kwargs)
    p.add_argument(old, **kw)
