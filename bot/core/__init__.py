"""Cross-cutting pieces: settings and logging."""
