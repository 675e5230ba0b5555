"""Helpers shared by the app's test suites (fakes run as real servers on loopback)."""
