"""Deployment: the SavedModel for TF Serving (saved_model, image_bytes; also
resolve_model_path, what a --model argument names: shipped name, workdir, .keras file or
export), TFLite variants (tflite) and running them with LiteRT (litert), TF Serving REST
bodies (rest) and the parity report of the exports (parity). The `export` command
(fadenn_tf.cli.export) drives them; inference builds on them (its LiteRT backend)."""
