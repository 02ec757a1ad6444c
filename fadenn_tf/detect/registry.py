"""Detectors by name: the registry behind get_detector("haar+profile", ...), the default
choice, and the command-line options of predict and track."""
from fadenn_tf.detect.boxes import FallbackDetector
from fadenn_tf.detect.cascades import (DLIB_DEFAULTS, HAAR_DEFAULTS, DlibHogDetector,
                                       HaarFaceDetector, ProfileFaceDetector, dlib_available)


_REGISTRY = {"haar": HaarFaceDetector, "profile": ProfileFaceDetector, "dlib": DlibHogDetector}


def default_detector_name():
    """The detector `get_detector("default")` builds: DEFAULT_DETECTOR when its parts can run
    here (dlib-bin is a requirement, but an installation may lack it), else
    DEFAULT_DETECTOR_WITHOUT_DLIB."""
    if "dlib" in DEFAULT_DETECTOR.split("+") and not dlib_available():
        return DEFAULT_DETECTOR_WITHOUT_DLIB
    return DEFAULT_DETECTOR


# Chosen on 400 training images of the held-out split (experiments/fit_detectors.py setup):
# dlib+haar finds 94.8%, dlib+haar+profile 95.0%: after dlib and Haar the profile cascade
# (both sides) adds 0.2 points but costs 2-4x dlib + Haar on a frame without a face (where
# every detector of a chain runs), so the default stops at Haar; without dlib the profile
# cascade still adds much (Haar alone 81%). Held-out figures: README.md ("Landmarks on any
# image or video") and `python -m fadenn_tf.bench --sections detect`.
DEFAULT_DETECTOR = "dlib+haar"
DEFAULT_DETECTOR_WITHOUT_DLIB = "haar+profile"


def register_detector(name, factory, overwrite=False):
    """Register `factory(**kwargs) -> BoxProvider` under `name` for get_detector ('+' and the
    name 'default' are reserved: they chain detectors / pick the default)."""
    if not isinstance(name, str) or not name or "+" in name or name == "default":
        raise ValueError(f"detector name must be a non-empty string without '+' and not "
                         f"'default', got {name!r}")
    if not callable(factory):
        raise TypeError(f"detector factory for {name!r} is not callable")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"a detector named {name!r} is already registered "
                         "(pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def available_detectors():
    """Sorted names accepted by get_detector (besides 'default' and chains 'a+b'); 'dlib' is
    listed only when dlib is installed."""
    return sorted(n for n in _REGISTRY if n != "dlib" or dlib_available())


def get_detector(name="default", **kwargs):
    """Build a detector by name -> BoxProvider.

    name: a registered name ("haar", "profile", "dlib" when installed, or your own),
    "default" (default_detector_name()), or a chain "a+b" (FallbackDetector: b runs only
    when a finds nothing; each detector of a chain gets the kwargs its factory takes, and a
    kwarg no detector takes raises TypeError), e.g. get_detector("haar", min_neighbors=3)
    or get_detector("dlib+haar", equalize=False).
    """
    if name == "default":
        name = default_detector_name()
    parts = str(name).split("+")
    for part in parts:
        if part not in _REGISTRY:
            raise ValueError(f"unknown face detector {part!r}; registered: "
                             f"{', '.join(available_detectors())} (chain them with '+', e.g. "
                             f"haar+profile; add one with register_detector)")
    if len(parts) == 1:
        return _REGISTRY[name](**kwargs)
    taken = [_accepted(_REGISTRY[p], kwargs) for p in parts]
    unused = set(kwargs) - set().union(*taken)
    if unused:
        raise TypeError(f"no detector of {name!r} takes {sorted(unused)}")
    return FallbackDetector([_REGISTRY[p](**kw) for p, kw in zip(parts, taken)])


def _accepted(factory, kwargs):
    """The kwargs that `factory`'s signature takes (all of them for **kwargs or when the
    signature cannot be read)."""
    import inspect
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return dict(kwargs)
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}


def _width_arg(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        import argparse
        raise argparse.ArgumentTypeError(f"--detect-width wants pixels or 'auto', got "
                                         f"{text!r}") from None


def add_detector_arguments(parser):
    """Add --detector and the detector options to an argparse parser (predict, track)."""
    g = parser.add_argument_group("face detector")
    g.add_argument("--detector", default="default",
                   help="face detector: default (" + DEFAULT_DETECTOR + "; "
                        + DEFAULT_DETECTOR_WITHOUT_DLIB + " without dlib), haar, profile, "
                        "dlib (needs pip install dlib-bin), a chain such as haar+profile "
                        "(the next runs when one finds nothing), or a registered name")
    g.add_argument("--no-equalize", dest="equalize", action="store_const", const=False,
                   default=None, help="Haar: no histogram equalisation (the default)")
    g.add_argument("--equalize", dest="equalize", action="store_const", const=True,
                   help="Haar: histogram-equalise the image first")
    g.add_argument("--scale-factor", type=float, default=None,
                   help=f"Haar pyramid step (default {HAAR_DEFAULTS['scale_factor']})")
    g.add_argument("--min-neighbors", type=int, default=None,
                   help=f"Haar neighbours needed (default {HAAR_DEFAULTS['min_neighbors']})")
    g.add_argument("--min-size", type=int, default=None,
                   help=f"Haar smallest face, pixels (default {HAAR_DEFAULTS['min_size']})")
    g.add_argument("--detect-width", type=_width_arg, default=None,
                   help="run the detector on the frame shrunk to this width in pixels; "
                        "auto = by min size / the detector's window; 0 = full resolution "
                        "(default: the detector's, auto for haar and profile)")
    g.add_argument("--upsample", type=int, default=None,
                   help=f"dlib: times the image is doubled (default {DLIB_DEFAULTS['upsample']})")
    return g


def detector_kwargs_from_args(args):
    """The detector options given on the command line (add_detector_arguments) as kwargs
    for get_detector; options left at their default are omitted."""
    names = ("equalize", "scale_factor", "min_neighbors", "min_size", "detect_width",
             "upsample")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
