"""`python -m fadenn_tf.train_failure_detector`: runs fadenn_tf.cli.train_failure_detector.main."""
import sys

from fadenn_tf.cli.train_failure_detector import main

if __name__ == "__main__":
    sys.exit(main())
