"""Training losses. All return a per-example loss [B] so that tf.distribute can average
them exactly over the global batch (`tf.nn.compute_average_loss`)."""
import tensorflow as tf

from fadenn_tf.models.pixels import to_unit


def landmark_rmse(pred, target):
    """Per-image RMSE of pixel coordinates: sqrt(mean over the 136 coordinates of the squared
    error). pred, target: [B, 68, 2] or [B, 136] in crop pixels -> [B] in pixels.

    The original takes one RMSE over the whole batch; averaging per-image RMSEs instead keeps
    the loss identical whatever the number of replicas the batch is split over.
    """
    return tf.sqrt(tf.reduce_mean(tf.square(_point_errors(pred, target)), axis=1) + 1e-8)


def reconstruction_l2(pred, target):
    """Per-image mean squared error over pixels and channels, measured in the networks'
    [-1, 1] range (as the paper's L2). pred, target: [B,H,W,3] pixels in 0..255 -> [B]."""
    diff = to_unit(tf.cast(pred, tf.float32)) - to_unit(tf.cast(target, tf.float32))
    return tf.reduce_mean(tf.square(diff), axis=[1, 2, 3])


def noise_cross_entropy(logits, labels):
    """Per-image softmax cross-entropy. logits [B, 5], labels [B] int in 0..4 -> [B] (nats)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32))


def mtc_loss(logits, reconstruction, labels, image, lam):
    """Multi-task classifier loss (paper eq. 10): CE(c, logits) + lam * L2(I, reconstruction),
    where I is the classifier's own input image (clean or noisy); images in 0..255 -> [B]."""
    return mtc_loss_and_terms(logits, reconstruction, labels, image, lam)[0]


def mtc_loss_and_terms(logits, reconstruction, labels, image, lam):
    """mtc_loss and its terms -> ([B], {"cross_entropy": [B], "l2_reconstruction": [B]})."""
    ce = noise_cross_entropy(logits, labels)
    rec = reconstruction_l2(reconstruction, image)
    return ce + lam * rec, {"cross_entropy": ce, "l2_reconstruction": rec}


def _point_errors(pred, target):
    """[B, 68, 2] or [B, 136] (same layout for both) -> [B, 136] coordinate differences."""
    pred = tf.reshape(tf.cast(pred, tf.float32), [tf.shape(pred)[0], -1])
    target = tf.reshape(tf.cast(target, tf.float32), [tf.shape(target)[0], -1])
    return pred - target


def landmark_l1(pred, target):
    """Per-image mean absolute coordinate error, in crop pixels. -> [B]."""
    return tf.reduce_mean(tf.abs(_point_errors(pred, target)), axis=1)


def landmark_wing(pred, target, w=10.0, epsilon=2.0):
    """Per-image Wing loss (Feng et al., CVPR 2018) over the coordinates, in crop pixels -> [B].

    wing(x) = w * ln(1 + |x| / epsilon) for |x| < w, else |x| - C, with
    C = w - w * ln(1 + w / epsilon) so that both pieces meet at |x| = w. It is log-shaped
    (steep) for small and medium errors and L1 for large ones.
    """
    x = tf.abs(_point_errors(pred, target))
    c = w - w * tf.math.log(1.0 + w / epsilon)
    return tf.reduce_mean(tf.where(x < w, w * tf.math.log(1.0 + x / epsilon), x - c), axis=1)


LANDMARK_LOSSES = {"rmse": landmark_rmse, "l1": landmark_l1, "wing": landmark_wing}


def landmark_loss(train_cfg):
    """The landmark loss named by the config (train.landmark_loss: rmse | l1 | wing):
    (pred, target) -> [B] per-image loss in crop pixels (the paper's RMSE by default)."""
    name = train_cfg.landmark_loss
    if name == "wing":
        w, eps = float(train_cfg.wing_w), float(train_cfg.wing_epsilon)
        return lambda pred, target: landmark_wing(pred, target, w, eps)
    return LANDMARK_LOSSES[name]
