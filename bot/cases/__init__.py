"""Consular cases: the identity check before anything about a case is disclosed."""
