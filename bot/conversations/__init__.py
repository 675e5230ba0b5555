"""Conversations: store every message first, decide who owns the thread, talk to Rasa."""
