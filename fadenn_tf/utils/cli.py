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
    from fadenn_tf.version import __version__
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


def defaults_from_config(parser, args, argv, section, names):
    """Set each option of `names` ({config key: dest, or (dest, convert)}) that the command line
    left out from the config `section` (flags win over the config)."""
    fields = {k: (v, None) if isinstance(v, str) else v for k, v in names.items()}
    given = given_on_command_line(parser, argv, {d for d, _ in fields.values()})
    for key, (dest, convert) in fields.items():
        if dest not in given:
            value = getattr(section, key)
            setattr(args, dest, convert(value) if convert else value)
