"""Export a trained model: SavedModel for TF Serving, TFLite variants for LiteRT.

    python -m fadenn_tf.export --model runs/cpu --out exported/fadenn_m \
        --tflite float32,float16,dynamic_int8,int8 --report

SavedModel (TF Serving layout exported/NAME/<version>/, never overwritten; written to a
temporary folder and renamed when complete; <version>/model.json holds the model's format-1
metadata, fadenn_tf.models.io). The Keras model scales its input inside its graph, so the
signatures pass pixels straight through. Signatures:
  "serving_default"      images      float32 [B,S,S,3] RGB 0..255 (S = the IID size)
                         -> landmarks   float32 [B,68,2] 0-based pixel coords in the S x S crop
                            noise_probs float32 [B,5]   (uniform 0.2 for FLL and FADeNN-D)
                            denoised    float32 [B,S,S,3] RGB 0..255 (same range as the input)
  "predict_image_bytes"  image_bytes string [B]  encoded JPEG/PNG (any size, one face each)
                         boxes       float32 [B,4] face box (x0,y0,x1,y1), pixel-EDGE coords
                                     of the original image (a detector's (x,y,w,h) is
                                     (x, y, x+w, y+h))
                         -> landmarks   float32 [B,68,2] 0-based pixel-centre coords in the
                                        ORIGINAL image (NaN where valid is false)
                            noise_probs float32 [B,5] (NaN where valid is false)
                            valid       bool [B]: false for a box that is non-finite
                                        or inverted, or whose part inside the image is
                                        under 8 px wide or high, and for bytes of no
                                        known image format
  Image and box counts that differ are an error naming both sizes; B = 0 gives empty
  outputs. Bytes of no known
  format (not JPEG/PNG/GIF/BMP/WebP) only flag their own row; bytes with a known header but
  corrupt content fail the whole call (TF's decoders raise; a graph cannot catch that).
  The bytes signature crops exactly as fadenn_tf.data.crop: region = crop_scale x the box
  (crop_scale from the model's metadata, 2 unless it says otherwise) clipped to the image,
  bilinear resize to S, area pre-shrink when the region is >= 2x the crop (as crop_image),
  and maps landmarks back with invert_points_tf.
TFLite (exported/NAME/tflite-<version>/fadenn_<variant>.tflite, with fadenn_<variant>.json
beside it: the model's metadata, whose crop_scale a LiteRT load crops at): the serving_default
signature only (decoding is not a TFLite builtin), builtin ops only, float32 I/O for every
variant. --tflite-routed (FADeNN-S/M) adds tflite-<version>/routed-<variant>/: the
classifier, experts and landmark tail as separate files, run by
fadenn_tf.load(folder, backend="litert") with only the chosen expert per crop.
See exported/README.md and docs/export.md.
"""
import sys

from fadenn_tf.config import load_config
from fadenn_tf.utils.cli import (EXIT_CODES, EXIT_DONE, add_config_arguments, add_no_progress,
                                 command, defaults_from_config, make_parser)
from fadenn_tf.utils.cli_args import positive_int


def build_parser():
    p = make_parser("export", __doc__, version_value=("serving_version", positive_int),
                    epilog=EXIT_CODES)
    p.add_argument("--model", required=True, metavar="PATH",
                   help="pretrained, pretrained-fll (shipped), a training workdir or .keras "
                        "file")
    p.add_argument("--out", required=True, help="export root, e.g. exported/fadenn_m")
    p.add_argument("--serving-version", type=positive_int, default=None, metavar="N",
                   help="TF Serving version folder OUT/N (default: the next free one)")
    p.add_argument("--tflite", default="", help="comma list of float32,float16,"
                                                "dynamic_int8,int8 (or all)")
    p.add_argument("--tflite-routed", default="", metavar="VARIANTS",
                   help="FADeNN-S/M only: comma list of float32,float16,dynamic_int8 (or all) "
                        "written as routed parts (only the chosen expert runs; deploy.routed)")
    p.add_argument("--tflite-batch", type=positive_int, default=None,
                   help="convert TFLite at this fixed batch (e.g. 1: faster batch-1 serving, "
                        "XNNPACK takes the whole graph); default: dynamic batch")
    p.add_argument("--data", default=None, help="dataset folder for representative and test "
                                                "crops (default: the synthetic dataset)")
    p.add_argument("--report", action="store_true", help="write the parity report")
    p.add_argument("--max-images", type=positive_int, default=100, help="test / calibration crops")
    p.add_argument("--normalizer", default="diagonal", choices=("diagonal", "box", "interocular"),
                   help="NME normaliser of the parity report (diagonal)")
    p.add_argument("--repeats", type=positive_int, default=30, help="latency repeats")
    add_config_arguments(p, "config whose export section gives the defaults (default cpu)")
    add_no_progress(p)
    return p


@command
def main(argv=None):
    parser = build_parser()
    a = parser.parse_args(argv)
    defaults_from_config(parser, a, argv, load_config(a.config, sets=a.sets).export,
                         {k: k for k in ("tflite", "max_images", "normalizer", "repeats")})
    from fadenn_tf.deploy.job import ExportOptions, run_export  # lazy: TensorFlow
    run_export(ExportOptions.of(a))
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
