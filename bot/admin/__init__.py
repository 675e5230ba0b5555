"""The guidance admin: staff edit, review and publish what the assistant says (issue 7)."""
