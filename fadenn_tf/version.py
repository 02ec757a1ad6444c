"""The package version: fadenn_tf.__version__, every command's --version, model metadata."""
__version__ = "0.1.0"
