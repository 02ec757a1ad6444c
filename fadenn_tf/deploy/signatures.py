"""The two serving signatures of an export: serving_default (crops of 0..255 pixels) and
predict_image_bytes (encoded images and face boxes; shapes in fadenn_tf.cli.export)."""
from fadenn_tf.utils.lazy import lazy_import
tf = lazy_import("tensorflow")

from fadenn_tf.data.crop import CROP_SCALE, invert_points_tf
from fadenn_tf.deploy.image_bytes import checked_crop_tf

SERVING_SIGNATURE = "serving_default"


BYTES_SIGNATURE = "predict_image_bytes"


def model_size(model):
    """The side S of the model's square input [B,S,S,3]."""
    return int(model.inputs[0].shape[1])


def serving_function(model, batch_size=None):
    """tf.function images [B,S,S,3] float32 0..255 -> {landmarks, noise_probs, denoised 0..255}.
    batch_size: None (dynamic B) or a fixed B (the TFLite fixed-batch conversion)."""
    s = model_size(model)

    @tf.function(input_signature=[tf.TensorSpec([batch_size, s, s, 3], tf.float32,
                                                name="images")])
    def serve(images):
        out = model(images, training=False)
        return {"landmarks": out["landmarks"],
                "noise_probs": _with_class_axis(out["noise_probs"], batch_size),
                "denoised": out["denoised"]}
    return serve


def part_function(model, batch_size=None):
    """tf.function images [B,S,S,3] float32 0..255 -> the model's own dict of outputs (a
    routed part, models.routed_parts). batch_size: None (dynamic) or a fixed B."""
    s = model_size(model)

    @tf.function(input_signature=[tf.TensorSpec([batch_size, s, s, 3], tf.float32,
                                                name="images")])
    def serve(images):
        return dict(model(images, training=False))
    return serve


def _with_class_axis(noise_probs, batch_size):
    """noise_probs with its static shape [B, 5] in the signature (an FLL wrapped as the
    baseline computes its uniform probabilities with a dynamic shape, shown as (-1, -1)).
    Models built by this version already give [B, 5] (no op is added then); for older
    files a reshape (a TFLite builtin, unlike tf.ensure_shape) pins it."""
    if noise_probs.shape.rank == 2 and noise_probs.shape[-1] == 5:
        return noise_probs
    return tf.reshape(noise_probs, [-1 if batch_size is None else batch_size, 5])


def bytes_function(model, scale=CROP_SCALE):
    """tf.function (image_bytes [B] string, boxes [B,4]) -> landmarks in original image
    pixels [B,68,2], noise_probs [B,5] and valid [B] (see checked_crop_tf; invalid rows
    have NaN landmarks and noise_probs; B = 0 gives empty outputs). scale: the crop region
    as a multiple of each box (the model's metadata crop_scale; a Python float baked into
    the graph). Differing batch sizes raise InvalidArgumentError naming both."""
    s = model_size(model)
    scale = float(scale)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes"),
                                  tf.TensorSpec([None, 4], tf.float32, name="boxes")])
    def predict_image_bytes(image_bytes, boxes):
        n_img, n_box = tf.shape(image_bytes)[0], tf.shape(boxes)[0]
        check = tf.debugging.Assert(tf.equal(n_img, n_box), [
            "predict_image_bytes: image_bytes has", n_img, "images but boxes has", n_box,
            "rows (one box per image)"])
        with tf.control_dependencies([check]):
            image_bytes = tf.identity(image_bytes)
        crops, regions, valid = tf.map_fn(
            lambda a: checked_crop_tf(a[0], a[1], s, scale), (image_bytes, boxes),
            fn_output_signature=(tf.TensorSpec([s, s, 3], tf.float32),
                                 tf.TensorSpec([4], tf.float32), tf.TensorSpec([], tf.bool)))
        # an empty request: the model runs on one blank crop, cut away below (the model's
        # layers do not all take a batch of 0), so B = 0 gives empty outputs, not an error
        pad = tf.maximum(1 - n_img, 0)
        crops = tf.concat([crops, tf.zeros([pad, s, s, 3], tf.float32)], 0)
        regions = tf.concat([regions, tf.tile([[0.0, 0.0, 1.0, 1.0]], [pad, 1])], 0)
        out = model(crops, training=False)
        nan = tf.constant(float("nan"), tf.float32)
        landmarks = invert_points_tf(out["landmarks"], regions, s)[:n_img]
        probs = _with_class_axis(out["noise_probs"], None)[:n_img]
        return {"landmarks": tf.where(valid[:, None, None], landmarks, nan),
                "noise_probs": tf.where(valid[:, None], probs, nan),
                "valid": valid}
    return predict_image_bytes
