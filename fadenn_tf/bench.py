"""`python -m fadenn_tf.bench`: runs fadenn_tf.cli.bench.main."""
import sys

from fadenn_tf.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
