"""Train the tracking fitting-failure detector (paper section IV-D).

    python -m fadenn_tf.train_failure_detector [--data DIR] --out FILE [--seed S]
        [--model M [--good-nme 0.03]]

Real faces (what `pretrained` should ship), e.g. the 300-W training folders:
    python -m fadenn_tf.train_failure_detector --data ../shared/data/300w-train \
        --model pretrained --out fd_300w.npz

Input: any dataset the indexers read (300-W, 300-VW, Menpo 2D or a folder of images with
.pts files; fadenn_tf.data.datasets.open_dataset), default the built-in synthetic data set
(fadenn_tf.data.cache.resolve_data(None), generated on first use). The images of the chosen
split (default "train") are divided into a training part and a held-out part with the
project's seeded split (fadenn_tf.data.datasets.split_holdout, --holdout 0.15, --seed 0:
the same held-out images as the training runs; whole videos for 300-VW); --max-images
subsamples the training part only. Positives are the ground-truth landmarks perturbed slightly
(NME < 0.03 of the landmark-box diagonal), negatives strongly displaced, scaled, rotated or
distorted ones, or shapes on the background (NME > 0.15). With --model, the model's own fits are added
(fadenn_tf.fitcheck.examples.make_model_fit_set): fitted in boxes near the ground truth and
far from it, labelled good when NME < --good-nme and failed when NME > 0.15; the held-out
accuracy is then also reported on such fits.

Output: FILE, a .npz model for fadenn_tf.fitcheck.detector.FailureDetector.load (used by
`python -m fadenn_tf.track`), and one printed line with the held-out accuracy, naming the
data set and split.
"""
import sys
import time
from pathlib import Path

import numpy as np

from fadenn_tf.utils.atomic import checked_write
from fadenn_tf.utils.cli import EXIT_CODES, EXIT_DONE, add_no_progress, command, make_parser
from fadenn_tf.utils.cli_args import non_negative_float, non_negative_int, positive_int


def _parser():
    p = make_parser("train_failure_detector", __doc__.split("\n\n", 2)[2],
                    epilog=EXIT_CODES + " A data set with fewer than 2 images with 68 "
                    "landmarks is an unusable input (2); this command never exits 1.")
    p.add_argument("--data", default=None,
                   help="dataset root (300-W, 300-VW, Menpo 2D or folder of image + .pts); "
                        "default: the built-in synthetic data set")
    p.add_argument("--format", default="auto",
                   help="dataset format: auto, 300w, 300vw, menpo, folder (default auto)")
    p.add_argument("--split", default="train",
                   help="split to train on, e.g. train, all, cat1 (default train)")
    p.add_argument("--out", required=True, help="output model file (.npz)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--holdout", type=float, default=0.15,
                   help="fraction of each folder held out for the accuracy (default 0.15, "
                        "the project's split with --seed 0)")
    p.add_argument("--max-images", type=positive_int, default=1500,
                   help="train on at most this many images (random subset of the training "
                        "part; default 1500)")
    p.add_argument("--model", default=None,
                   help="landmark model (workdir, .keras, .tflite): add its own fits as "
                        "examples (recommended for real faces)")
    p.add_argument("--good-nme", type=float, default=0.03,
                   help="--model fits with NME below this are good fits (default 0.03)")
    p.add_argument("--positives", type=positive_int, default=2, help="good fits per image (default 2)")
    p.add_argument("--negatives", type=positive_int, default=3, help="failures per image (default 3)")
    p.add_argument("--l2", type=non_negative_float, default=1e-2, help="L2 regularisation (default 0.01)")
    add_no_progress(p)
    return p


def _open(data, fmt, split):
    """(samples, description) of the dataset to train on."""
    from fadenn_tf.data.cache import resolve_data  # lazy: the data readers (OpenCV, NumPy)
    from fadenn_tf.data.datasets import open_dataset  # lazy: the data readers
    if data is None:
        root = resolve_data(None)
        name = f"built-in synthetic data ({root})"
    else:
        root, name = data, str(data)
    samples, report = open_dataset(root, format=fmt, split=split)
    return samples, f"{name}, format {report.format}, split {report.split or split}"


@command
def main(argv=None):
    args = _parser().parse_args(argv)
    from fadenn_tf.data.datasets import split_holdout  # lazy: the data readers (OpenCV, NumPy)
    from fadenn_tf.fitcheck import examples  # lazy: the features (OpenCV)

    if not 0 < args.holdout < 1:
        raise ValueError(f"--holdout must be in (0, 1), got {args.holdout:g}")
    samples, where = _open(args.data, args.format, args.split)  # DataError: exit 2
    samples = [s for s in samples if s.landmarks is not None and len(s.landmarks) == 68]
    samples.sort(key=lambda s: (s.image_path, -1 if s.frame is None else s.frame))
    train, held = split_holdout(samples, args.holdout, args.seed)
    if len(train) > args.max_images:
        rng = np.random.default_rng(args.seed)
        keep = np.sort(rng.choice(len(train), args.max_images, replace=False))
        train = [train[i] for i in keep]
    predictor = None
    if args.model:
        from fadenn_tf.inference.predictor import load  # lazy: models only with --model
        backend = "litert" if str(args.model).endswith(".tflite") else "keras"
        predictor = load(args.model, detector=None, backend=backend, failure_detector=None)
    if not train or not held:
        raise ValueError(f"{where}: need at least 2 images with 68 landmarks, found "
                         f"{len(samples)}")
    with checked_write(args.out):   # an unwritable --out fails now (3), not after training
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    ex = examples.FitExamples(pos_per_sample=args.positives, neg_per_sample=args.negatives,
                              max_good_nme=args.good_nme)
    det = examples.train_failure_detector(train, args.seed, args.l2, ex,
                                          progress=not args.no_progress, predictor=predictor)
    res = examples.evaluate_failure_detector(det, held, args.seed + 1, ex,
                                             progress=not args.no_progress, predictor=predictor)
    det.info.update({"data": where, "n_train_images": len(train),
                     "n_heldout_images": len(held), "heldout": res,
                     "heldout_split": f"split_holdout({args.holdout:g}, seed {args.seed})",
                     "model": args.model, "good_nme": args.good_nme})
    det.save(args.out)
    print(f"held-out accuracy {res['accuracy']:.3f} (good fits accepted "
          f"{res['good_recall']:.3f}, failures caught {res['failure_recall']:.3f}; "
          f"{res['n_good']} good + {res['n_failure']} failed fits on {len(held)} held-out "
          f"images, {args.holdout:g} of {where}; trained on {len(train)} images, seed "
          f"{args.seed}, {time.time() - t0:.0f} s)")
    if "model_fits" in res:
        m = res["model_fits"]
        print(f"on the model's own held-out fits: accuracy {m['accuracy']:.3f} (good fits "
              f"accepted {m['good_recall']:.3f}, failures caught {m['failure_recall']:.3f}; "
              f"{m['n_good']} good + {m['n_failure']} failed fits of {args.model})")
    print(f"wrote {args.out}")
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
