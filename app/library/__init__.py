"""app/library."""
