"""HTTP APIs that are not a citizen channel: internal (action server) and health."""
