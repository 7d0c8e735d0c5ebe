"""Webhook signing secrets are stored encrypted: `webhooks.secret` becomes `secret_ciphertext`.

Each existing plain secret is replaced by its Fernet token under the first key of
WEBHOOK_SECRET_KEYS (read from the environment, as the service reads it; the development key
when the service would use it). A check constraint keeps anything but a Fernet token (version
byte 0x80, base64url "gA...") out of the column; a plain secret (hex) can never match it.
The downgrade decrypts the tokens back into a plain `secret` column with the same keys.

Revision ID: sub0002
Revises: sub0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet, MultiFernet

from submission_service.config import Settings

revision: str = "sub0002"
down_revision: str | None = "sub0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK_NAME = "ck_webhooks_secret_ciphertext_is_fernet"


def _key_ring() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in Settings().webhook_secret_key_ring()])


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("secret_ciphertext", sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, secret FROM webhooks")).all()
    if rows:
        ring = _key_ring()
        bind.execute(
            sa.text("UPDATE webhooks SET secret_ciphertext = :token WHERE id = :id"),
            [{"id": r.id, "token": ring.encrypt(r.secret.encode()).decode()} for r in rows],
        )
    op.alter_column("webhooks", "secret_ciphertext", nullable=False)
    op.drop_column("webhooks", "secret")
    op.create_check_constraint(CHECK_NAME, "webhooks", "left(secret_ciphertext, 2) = 'gA'")


def downgrade() -> None:
    op.drop_constraint(CHECK_NAME, "webhooks", type_="check")
    op.add_column("webhooks", sa.Column("secret", sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, secret_ciphertext FROM webhooks")).all()
    if rows:
        ring = _key_ring()
        bind.execute(
            sa.text("UPDATE webhooks SET secret = :secret WHERE id = :id"),
            [
                {"id": r.id, "secret": ring.decrypt(r.secret_ciphertext.encode()).decode()}
                for r in rows
            ],
        )
    op.alter_column("webhooks", "secret", nullable=False)
    op.drop_column("webhooks", "secret_ciphertext")
