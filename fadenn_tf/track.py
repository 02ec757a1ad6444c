"""`python -m fadenn_tf.track`: runs fadenn_tf.cli.track.main."""
import sys

from fadenn_tf.cli.track import main

if __name__ == "__main__":
    sys.exit(main())
