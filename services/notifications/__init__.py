"""The outbox: notifications written in a transaction and sent after it commits."""
