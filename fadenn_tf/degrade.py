"""`python -m fadenn_tf.degrade`: runs fadenn_tf.cli.degrade.main."""
import sys

from fadenn_tf.cli.degrade import main

if __name__ == "__main__":
    sys.exit(main())
