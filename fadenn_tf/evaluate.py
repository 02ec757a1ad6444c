"""`python -m fadenn_tf.evaluate`: runs fadenn_tf.cli.evaluate.main."""
import sys

from fadenn_tf.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
