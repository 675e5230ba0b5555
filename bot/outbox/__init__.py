"""The persisted outbox: every reply to a push channel is delivered from here."""
