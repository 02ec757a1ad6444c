"""Conventions shared by every command: program name, --version, --no-progress, aliases.

Imports nothing heavy, so `--help` and `--version` answer without loading TensorFlow.
"""
import argparse
import dataclasses
import functools
import os
import sys
import textwrap

from fadenn_tf.errors import WRITE_FAILURE_TEXTS, FadennError, WriteError
from fadenn_tf.utils.lock import release_taken
from fadenn_tf.version import __version__

# The exit status of every command (README "Exit status"; each --help ends with EXIT_CODES).
EXIT_DONE = 0            # done
EXIT_NOTHING_FOUND = 1   # ran, but found nothing (no face in any input)
EXIT_BAD_INPUT = 2       # bad arguments or unusable inputs
EXIT_IO = 3              # an I/O failure: full disk, unwritable output
EXIT_INTERRUPTED = 130   # interrupted (Ctrl-C, SIGTERM where the command handles it)

EXIT_CODES = ("Exit status: 0 done; 1 ran but found nothing (no face in any input); 2 bad "
              "arguments or unusable inputs (each named on stderr); 3 an I/O failure such as "
              "a full disk or an unwritable output (the file named); 130 interrupted.")


def exit_status(exc):
    """The exit status for an exception that ends a command (see EXIT_CODES), or None for
    an unexpected one (a bug: let its traceback show)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, WriteError):
        return EXIT_IO
    if isinstance(exc, (FadennError, ValueError)):
        return EXIT_BAD_INPUT
    # writes are checked (utils.atomic.checked_write raises WriteError); an OSError that
    # reaches here is a read (an unusable input), unless it says the disk is full
    # (TensorFlow words that in its own error types, too)
    if any(text in str(exc) for text in WRITE_FAILURE_TEXTS):
        return EXIT_IO
    if isinstance(exc, OSError):
        return EXIT_BAD_INPUT
    return None


def command(main):
    """Decorator of a command's main(argv) -> int: an error that ends it is one line on
    stderr (`error: ...`, `interrupted`) and the exit status of EXIT_CODES instead of a
    traceback; the folder locks main took (fadenn_tf.utils.lock.take_lock) are released."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        depth = release_taken(None)
        try:
            return main(*args, **kwargs)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001
            code = exit_status(exc)
            if code is None:
                raise
            print("\ninterrupted" if code == EXIT_INTERRUPTED else f"error: {_one_line(exc)}",
                  file=sys.stderr, flush=True)
            return code
        finally:
            release_taken(depth)
    return wrapper


def _one_line(exc):
    """The error's message: the project's own errors whole; an OSError as `FILE: reason`;
    another error's message cut at its first line (TensorFlow's carry a graph traceback)."""
    if isinstance(exc, OSError) and getattr(exc, "filename", None) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc).strip()
    if not isinstance(exc, FadennError):
        text = text.splitlines()[0] if text else ""
    return text or type(exc).__name__


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
        if kwargs.get("epilog"):  # kept as written: wrap it here
            kwargs["epilog"] = textwrap.fill(kwargs["epilog"], 92)
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


def add_config_arguments(p, config_help=None):
    """--set SECTION.KEY=VALUE (repeatable), and --config NAME|YAML when config_help is given."""
    if config_help:
        p.add_argument("--config", default="cpu", help=config_help)
    p.add_argument("--set", dest="sets", action="append", default=[],
                   metavar="SECTION.KEY=VALUE",
                   help="override a config key, typed and checked like the YAML file "
                        "(repeatable), e.g. --set train.learning_rate=5e-4")


def given_on_command_line(parser, argv, dests):
    """The names in `dests` that the command line `argv` set explicitly (not by default)."""
    unset = object()
    actions = [a for a in parser._actions if a.dest in dests]
    saved = [a.default for a in actions]
    try:
        for a in actions:
            a.default = unset
        ns = parser.parse_args(sys.argv[1:] if argv is None else argv)
    finally:
        for a, d in zip(actions, saved):
            a.default = d
    return {d for d in dests if getattr(ns, d, unset) is not unset}


def config_flags(parser, section, renamed=None):
    """The flag-to-config map of a config section, generated from its dataclass fields:
    {key: (dest, convert)} for each field `key` of `section` (a dataclass or its instance)
    that `parser` has an option for, i.e. an option whose dest is `key`, or the one
    `renamed[key]` names: a dest, or (dest, convert) where convert(config value) -> option
    value (e.g. `lambda v: not v` for a --no-KEY flag). Fields without an option are left
    out; a `renamed` dest the parser lacks raises LookupError (a bug in the command)."""
    renamed = dict(renamed or {})
    dests = {a.dest for a in parser._actions}
    flags = {}
    for f in dataclasses.fields(section):
        spec = renamed.pop(f.name, f.name)
        dest, convert = (spec, None) if isinstance(spec, str) else spec
        if dest in dests:
            flags[f.name] = (dest, convert)
        elif dest != f.name:
            raise LookupError(f"config key {f.name!r}: the parser has no option {dest!r}")
    if renamed:
        raise LookupError(f"no config key {sorted(renamed)} in {type(section).__name__}")
    return flags


def defaults_from_config(parser, args, argv, section, names=None):
    """Set each option that the command line left out from the config `section` (flags win
    over the config). names: {config key: dest, or (dest, convert)}; default
    config_flags(parser, section), every key that has an option of the same dest."""
    if names is None:
        names = config_flags(parser, section)
    fields = {k: (v, None) if isinstance(v, str) else v for k, v in names.items()}
    given = given_on_command_line(parser, argv, {d for d, _ in fields.values()})
    for key, (dest, convert) in fields.items():
        if dest not in given:
            value = getattr(section, key)
            setattr(args, dest, convert(value) if convert else value)
