"""Consular assistance service: the app that owns channels, conversations and data."""
