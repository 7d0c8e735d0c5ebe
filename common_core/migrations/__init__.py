"""Alembic environment shared by every service, and common_core's own outbox/inbox migration."""
