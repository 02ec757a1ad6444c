"""`python -m fadenn_tf.export`: runs fadenn_tf.cli.export.main."""
import sys

from fadenn_tf.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
