"""The predict_image_bytes signature: encoded images and face boxes in, landmarks in original
image pixels out; the crop is fadenn_tf.data.crop's, written in TF ops."""
from fadenn_tf.utils.lazy import lazy_import
tf = lazy_import("tensorflow")

from fadenn_tf.data.crop import CROP_SCALE, crop_and_resize_tf, crop_regions_tf


def decode_rgb(image_bytes):
    """Encoded JPEG/PNG/BMP/GIF (first frame) string scalar -> [H,W,3] uint8 RGB.

    JPEGs decode with the accurate integer IDCT, as OpenCV (the project's decoder,
    fadenn_tf.data.images) does; TF's default (INTEGER_FAST) differs by up to 5 grey levels."""
    return tf.cond(
        tf.io.is_jpeg(image_bytes),
        lambda: tf.io.decode_jpeg(image_bytes, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.ensure_shape(tf.io.decode_image(image_bytes, channels=3, dtype=tf.uint8,
                                                   expand_animations=False), [None, None, 3]))


def crop_encoded_tf(image_bytes, box, size, scale=CROP_SCALE):
    """Decode one JPEG/PNG (string scalar) and crop the face `box` [4] (edge coords) to
    [size,size,3] float32 0..255. Returns (crop, region [4] in the original image).

    Same mapping as fadenn_tf.data.crop.crop_image: region = crop_regions_tf(box) (2x, clipped);
    when the region is >= 2x the crop along an axis, the window under the region (2k px
    margin) is first shrunk by about k = floor(region / size) with area averaging, as
    crop_image does with cv2.INTER_AREA, then sampled bilinearly with crop_and_resize_tf."""
    return crop_decoded_tf(tf.cast(decode_rgb(image_bytes), tf.float32), box, size, scale)


def crop_decoded_tf(img, box, size, scale=CROP_SCALE):
    """crop_encoded_tf on a decoded [H,W,3] float32 image."""
    hw = tf.shape(img)[:2]
    region = crop_regions_tf(box[None], hw, scale=scale)
    rw = region[0, 2] - region[0, 0]
    rh = region[0, 3] - region[0, 1]
    kx = tf.maximum(tf.floor(rw / size), 1.0)
    ky = tf.maximum(tf.floor(rh / size), 1.0)

    def shrunk():  # crop_image's window + INTER_AREA step, in TF
        h, w = tf.cast(hw[0], tf.float32), tf.cast(hw[1], tf.float32)
        wx0 = tf.maximum(0.0, tf.floor(region[0, 0]) - 2.0 * kx)
        wx1 = tf.minimum(w, tf.math.ceil(region[0, 2]) + 2.0 * kx)
        wy0 = tf.maximum(0.0, tf.floor(region[0, 1]) - 2.0 * ky)
        wy1 = tf.minimum(h, tf.math.ceil(region[0, 3]) + 2.0 * ky)
        win = img[tf.cast(wy0, tf.int32):tf.cast(wy1, tf.int32),
                  tf.cast(wx0, tf.int32):tf.cast(wx1, tf.int32)]
        dw = tf.maximum(tf.round((wx1 - wx0) / kx), 1.0)
        dh = tf.maximum(tf.round((wy1 - wy0) / ky), 1.0)
        small = tf.image.resize(win[None], tf.cast(tf.stack([dh, dw]), tf.int32), method="area")
        fx, fy = (wx1 - wx0) / dw, (wy1 - wy0) / dh
        reg = (region - tf.stack([wx0, wy0, wx0, wy0])) / tf.stack([fx, fy, fx, fy])
        return crop_and_resize_tf(small, reg, size)[0]

    def direct():
        return crop_and_resize_tf(img[None], region, size)[0]

    crop = tf.cond(tf.logical_or(kx >= 2.0, ky >= 2.0), shrunk, direct)
    return tf.ensure_shape(crop, [size, size, 3]), region[0]


def known_image_format(image_bytes):
    """bool scalar: the string starts like a JPEG, PNG, GIF, BMP or WebP file."""
    head = tf.strings.join([tf.strings.substr(image_bytes, 0, 12), b"\0" * 12])  # short: padded
    head4 = tf.strings.substr(head, 0, 4)
    return tf.reduce_any(tf.stack([
        tf.io.is_jpeg(image_bytes), tf.equal(head4, b"\x89PNG"), tf.equal(head4, b"GIF8"),
        tf.equal(tf.strings.substr(head, 0, 2), b"BM"),
        tf.logical_and(tf.equal(head4, b"RIFF"),
                       tf.equal(tf.strings.substr(head, 8, 4), b"WEBP"))]))


# The smallest face the signature fits: the part of the box inside the image must be at least
# this many pixels wide and high (as the tracker's min_face). A 1-px box, or any box on a
# 1x1 image, holds no face 68 points can describe: such a row is invalid, not a guess.
MIN_FACE_PX = 8.0


def checked_crop_tf(image_bytes, box, size, scale=CROP_SCALE):
    """crop_encoded_tf that never returns a plausible crop for a bad input: (crop, region,
    valid). valid is false for bytes of no known format and for a box that is non-finite,
    inverted, or whose part inside the image is under MIN_FACE_PX wide or high (a tiny box,
    a tiny image, a box entirely outside); such rows are cropped from a placeholder (a 1x1
    image or the whole image) so the batch goes on."""
    readable = known_image_format(image_bytes)
    placeholder = tf.io.encode_png(tf.zeros([1, 1, 3], tf.uint8))
    img = tf.cast(decode_rgb(tf.where(readable, image_bytes, placeholder)), tf.float32)
    h = tf.cast(tf.shape(img)[0], tf.float32)
    w = tf.cast(tf.shape(img)[1], tf.float32)
    x0, y0, x1, y1 = tf.unstack(box)
    inside_w = tf.minimum(x1, w) - tf.maximum(x0, 0.0)
    inside_h = tf.minimum(y1, h) - tf.maximum(y0, 0.0)
    valid = tf.reduce_all(tf.stack([
        readable, tf.reduce_all(tf.math.is_finite(box)),
        inside_w >= MIN_FACE_PX, inside_h >= MIN_FACE_PX]))
    safe_box = tf.where(valid, box, tf.stack([0.0, 0.0, w, h]))
    crop, region = crop_decoded_tf(img, safe_box, size, scale)
    return crop, region, valid


