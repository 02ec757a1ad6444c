"""`python -m fadenn_tf`: lists the commands; `python -m fadenn_tf COMMAND ARGS...` runs one
(the same as `python -m fadenn_tf.COMMAND ARGS...` and the `fadenn-COMMAND` console script).

The commands are the modules of fadenn_tf.cli; each line of the list is the first sentence
of the command's docstring. Nothing here imports TensorFlow.
"""
import importlib
import pkgutil
import sys
import textwrap

from fadenn_tf import cli
from fadenn_tf.utils.cli import EXIT_BAD_INPUT


def commands():
    """Names of the commands (modules of fadenn_tf.cli), sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(cli.__path__) if not m.name.startswith("_"))


def summary(name):
    """First sentence of command `name`'s module docstring, on one line."""
    doc = importlib.import_module(f"fadenn_tf.cli.{name}").__doc__ or ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    if first.startswith(f"`{name}`: "):
        first = first[len(name) + 4:]
    first = first.split(". ")[0].rstrip(".")
    return first[:1].upper() + first[1:]


def usage():
    """The text `python -m fadenn_tf` prints: every command with its one-line summary."""
    names = commands()
    width = max(len(n) for n in names) + 2
    lines = ["usage: python -m fadenn_tf COMMAND [ARGS...]   (COMMAND --help for its options)",
             "", "commands:"]
    for n in names:
        lines += textwrap.wrap(summary(n), 100, initial_indent=f"  {n:<{width}}",
                               subsequent_indent=" " * (width + 2))
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name = argv[0].replace("-", "_")
    if name not in commands():
        print(f"error: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return importlib.import_module(f"fadenn_tf.cli.{name}").main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
