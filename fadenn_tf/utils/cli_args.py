"""argparse types for numeric flags that cannot be zero or negative (exit 2, no traceback)."""
import argparse


def _number(kind, minimum, inclusive):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}"
                                             f", got {text!r}") from None
        if value != value or (value < minimum if inclusive else value <= minimum):
            raise argparse.ArgumentTypeError(
                f"must be {'>=' if inclusive else '>'} {minimum}, got {text}")
        return value
    parse.__name__ = f"{kind.__name__}"  # argparse names the type in its messages
    return parse


positive_int = _number(int, 0, inclusive=False)        # >= 1
non_negative_int = _number(int, 0, inclusive=True)     # >= 0
positive_float = _number(float, 0, inclusive=False)    # > 0
