"""Shared runtime: Kafka producer and consumer runner, outbox, database, logging, metrics."""
