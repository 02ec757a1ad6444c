"""Detectors by name: the registry behind get_detector("haar+profile", ...), the default
choice, and the command-line options of predict and track."""
import argparse
import inspect

from fadenn_tf.detect.boxes import FallbackDetector
from fadenn_tf.detect.cascades import (DLIB_DEFAULTS, HAAR_DEFAULTS, DlibHogDetector,
                                       HaarFaceDetector, ProfileFaceDetector, dlib_available)
from fadenn_tf.detect.ultraface import ULTRAFACE_DEFAULTS, UltraFaceDetector, ultraface_slim


_REGISTRY = {"ultraface": UltraFaceDetector, "ultraface-slim": ultraface_slim,
             "haar": HaarFaceDetector, "profile": ProfileFaceDetector, "dlib": DlibHogDetector}


def default_detector_name():
    """The detector `get_detector("default")` builds: DEFAULT_DETECTOR."""
    return DEFAULT_DETECTOR


# Chosen on the 185 whole AFW photos of the 300-W training set (1,024 px, 337 annotated
# faces; experiments/fit_ultraface.py): UltraFace RFB with input "auto" finds 333/337 faces
# (329 of the 332 of 40 px or more) in about 6 CPU ms per photo on 2 cores; the former
# default dlib+haar found 276/337 at about 10x that CPU time, Haar alone 264/337 at 17x.
# UltraFace found a face in every photo, so a fallback after it would never have run: none
# is chained. Figures: README.md ("Landmarks on any image or video").
DEFAULT_DETECTOR = "ultraface"


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
    listed only when dlib is installed (pip install 'fadenn_tf[dlib]')."""
    return sorted(n for n in _REGISTRY if n != "dlib" or dlib_available())


def get_detector(name="default", **kwargs):
    """Build a detector by name -> BoxProvider.

    name: a registered name ("ultraface", "ultraface-slim", "haar", "profile", "dlib" when
    installed, or your own), "default" (DEFAULT_DETECTOR), or a chain "a+b"
    (FallbackDetector: b runs only when a finds nothing; each detector of a chain gets the
    kwargs its factory takes, and a kwarg no detector takes raises TypeError), e.g.
    get_detector("ultraface", min_score=0.8), get_detector("haar", min_neighbors=3) or
    get_detector("dlib+haar", equalize=False).
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
        raise argparse.ArgumentTypeError(f"--detect-width wants pixels or 'auto', got "
                                         f"{text!r}") from None


def _input_size_arg(text):
    if text == "auto":
        return text
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"--detector-input wants WIDTHxHEIGHT (e.g. 640x480) "
                                         f"or 'auto', got {text!r}") from None


def add_detector_arguments(parser):
    """Add --detector and the detector options to an argparse parser (predict, track)."""
    g = parser.add_argument_group("face detector")
    g.add_argument("--detector", default="default",
                   help="face detector: default (" + DEFAULT_DETECTOR + ": UltraFace RFB, "
                        "a CNN run by LiteRT), ultraface-slim, haar, profile, dlib (needs "
                        "pip install 'fadenn_tf[dlib]'), a chain such as haar+profile (the "
                        "next runs when one finds nothing), or a registered name")
    g.add_argument("--min-score", type=float, default=None, metavar="S",
                   help="UltraFace: keep faces whose detector score (face probability, "
                        f"0-1) is at least this (default {ULTRAFACE_DEFAULTS['min_score']})")
    g.add_argument("--detector-input", dest="input_size", type=_input_size_arg, default=None,
                   metavar="WxH|auto",
                   help="UltraFace: the size the photo is resized to, WIDTHxHEIGHT with "
                        "sides multiples of 80 (e.g. 640x480 finds smaller faces, ~3x "
                        "slower) or auto (default: about 320x240 pixels with the photo's "
                        "aspect ratio)")
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
                   help="Haar, dlib: run the detector on the frame shrunk to this width "
                        "in pixels; "
                        "auto = by min size / the detector's window; 0 = full resolution "
                        "(default: the detector's, auto for haar and profile)")
    g.add_argument("--upsample", type=int, default=None,
                   help=f"dlib: times the image is doubled (default {DLIB_DEFAULTS['upsample']})")
    return g


def detector_kwargs_from_args(args):
    """The detector options given on the command line (add_detector_arguments) as kwargs
    for get_detector; options left at their default are omitted."""
    names = ("min_score", "input_size", "equalize", "scale_factor", "min_neighbors",
             "min_size", "detect_width", "upsample")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
