"""Rasa custom actions. They reach data only through the app's internal API."""
