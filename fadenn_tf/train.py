"""`python -m fadenn_tf.train`: runs fadenn_tf.cli.train.main."""
import sys

from fadenn_tf.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
