"""Data: .pts files, dataset indexers, image reading, the crop transform, tf.data pipelines,
augmentation and the built-in synthetic face dataset."""
