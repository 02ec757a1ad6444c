"""Value checks shared by the config sections (fadenn_tf.config, fadenn_tf.config_commands):
each raises ConfigError naming the config file (`where`) and the key."""
import math

from fadenn_tf.errors import ConfigError


def check(ok, where, key, problem):
    """ConfigError "WHERE: KEY: PROBLEM" unless `ok`."""
    if not ok:
        raise ConfigError(f"{where}: {key}: {problem}")


def check_number(value, where, key, lo=None, hi=None, lo_open=False, hi_open=False,
                 integer=False):
    """Check that config value `key` is a finite int (integer=True) or number within
    [lo, hi] (open ends with lo_open / hi_open); ConfigError naming the key otherwise."""
    ok_type = (isinstance(value, int) if integer else isinstance(value, (int, float))) \
        and not isinstance(value, bool)
    check(ok_type, where, key, f"expected {'an integer' if integer else 'a number'}, "
          f"got {value!r}")
    check(math.isfinite(value), where, key, f"must be finite, got {value!r}")
    above = lo is None or (value > lo if lo_open else value >= lo)
    below = hi is None or (value < hi if hi_open else value <= hi)
    if lo is not None and hi is not None:
        check(above and below, where, key, f"must be in {'(' if lo_open else '['}{lo}, "
              f"{hi}{')' if hi_open else ']'}, got {value!r}")
    check(above, where, key, f"must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    check(below, where, key, f"must be {'<' if hi_open else '<='} {hi}, got {value!r}")
