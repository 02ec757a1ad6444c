"""`python -m fadenn_tf.predict`: runs fadenn_tf.cli.predict.main."""
import sys

from fadenn_tf.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
