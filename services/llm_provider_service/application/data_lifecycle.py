"""Erasing what the LLM provider holds of one CJ batch: its batch-mode requests still waiting to
be put into a provider batch (each carries two essays). Each is stored with the key its answer
goes out with, the CJ batch id (the request's `callback_key`; the key itself before requests were
spread over instances), so they are found without reading any text.

Requests already at a provider stay until answered (their text is cleared then, like every
answer's), and sync-mode requests are never stored: docs/operations.md, "Data lifecycle".
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import structlog

from common_core.runtime.metrics import ROWS_ERASED
from llm_provider_service.application.ports import Transactions

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RequestsErased:
    """What an erasure did: waiting requests deleted, and those still at a provider."""

    waiting_requests: int
    in_flight_requests: int


async def erase_batch_requests(transactions: Transactions, batch_id: UUID) -> RequestsErased:
    """Delete the batch-mode requests of a CJ batch that no provider has yet (idempotent)."""
    async with transactions() as uow:
        deleted, in_flight = await uow.batches.drop_waiting(str(batch_id))

        def count() -> None:
            ROWS_ERASED.labels(kind="llm_batch_items").inc(deleted)
            log.info(
                "llm_batch_requests_erased",
                batch_id=str(batch_id),
                waiting_requests=deleted,
                in_flight_requests=in_flight,
            )

        uow.after_commit(count)
    return RequestsErased(deleted, in_flight)
