"""Guidance: what the assistant says, kept as articles with reviewed, published revisions."""
