"""The names of the 5 noise classes a FADeNN classifier predicts, index = class id (0 clean,
then the 4 degradations of fadenn_tf.noise, which re-exports them). A module of its own,
without TensorFlow, so that prediction results can name a class on the TF-free path."""
NOISE_NAMES = ("clean", "downsample", "blur", "gaussian_noise", "color_scale")
