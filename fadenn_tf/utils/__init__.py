"""Small shared helpers: atomic file writing, progress bars."""
