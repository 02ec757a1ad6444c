"""`python -m fadenn_tf.synth`: runs fadenn_tf.cli.synth.main."""
import sys

from fadenn_tf.cli.synth import main

if __name__ == "__main__":
    sys.exit(main())
