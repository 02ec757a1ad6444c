"""argparse types for numeric flags that cannot be zero or negative: a bad value is a usage
error (exit 2, `argument --steps: must be > 0, got -5`), never a silent default."""
import argparse


def _number(kind, minimum, inclusive):
    what = "an integer" if kind is int else "a number"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value != value or (value < minimum if inclusive else value <= minimum):
            raise argparse.ArgumentTypeError(
                f"must be {'>=' if inclusive else '>'} {minimum}, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


positive_int = _number(int, 0, inclusive=False)         # >= 1
non_negative_int = _number(int, 0, inclusive=True)      # >= 0
positive_float = _number(float, 0, inclusive=False)     # > 0
non_negative_float = _number(float, 0, inclusive=True)  # >= 0


def argparse_type(parse, **kwargs):
    """An argparse type from a library parser `parse(text, **kwargs)` that raises
    ValueError: its message becomes the usage error (exit 2)."""
    def wrapped(text):
        try:
            return parse(text, **kwargs)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    wrapped.__name__ = parse.__name__
    return wrapped
