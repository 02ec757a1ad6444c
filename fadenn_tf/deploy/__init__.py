"""Deployment: the SavedModel for TF Serving (saved_model, image_bytes), TFLite variants for
LiteRT (tflite), TF Serving REST bodies (rest) and the parity report of the exports (parity).
The `export` command (fadenn_tf.cli.export) drives them."""
