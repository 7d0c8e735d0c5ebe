"""Essay sets: the claim-check side of large CJ requests.

A request of thousands of full-length essays does not fit in one Kafka message, so the upstream
uploads the essays first (NDJSON, one `{"essay_id", "text_content"}` object a line) and the
request event names the stored set (`essay_set.essay_set_id`). Every essay is checked against the
inline contract's limits (`EssayToProcess`), plus what intake would refuse later (a duplicate
id, a blank text), so a bad upload is answered at once with the field at fault. Essays are
written in chunks as they are read, so the service never holds the whole upload.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from pydantic import ValidationError

from cj_assessment_service.application.ports import EssayRecord, EssaySetStore
from cj_assessment_service.domain.errors import InvalidEssaySet
from common_core.events.cj import EssayToProcess
from common_core.limits import MAX_ESSAYS_PER_REQUEST

# Essays written per INSERT while an upload streams in.
WRITE_CHUNK = 200


@dataclass(frozen=True, slots=True)
class EssaySetReceipt:
    """What an upload answers: the id a request names, the count, the digest, the expiry."""

    essay_set_id: UUID
    essay_count: int
    content_sha256: str
    expires_at: datetime


def essay_digest_line(essay_id: str, text_content: str) -> bytes:
    """One essay's contribution to a set's `content_sha256`: the UTF-8 of the compact JSON
    array `[essay_id, text_content]` and a newline, in upload order."""
    compact = json.dumps([essay_id, text_content], ensure_ascii=False, separators=(",", ":"))
    return compact.encode("utf-8") + b"\n"


def _essay(line: bytes, index: int) -> EssayToProcess:
    where = f"essays[{index}]"
    try:
        essay = EssayToProcess.model_validate_json(line)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        location = ".".join(str(part) for part in error["loc"])
        if error["type"] == "json_invalid":
            raise InvalidEssaySet(where, "is not a JSON object on one line") from None
        if error["type"] == "model_type":
            raise InvalidEssaySet(where, "is not a JSON object") from None
        field = f"{where}.{location}" if location else where
        raise InvalidEssaySet(field, error["msg"]) from None
    if not essay.text_content.strip():
        raise InvalidEssaySet(f"{where}.text_content", "is empty")
    return essay


async def upload_essay_set(
    store: EssaySetStore,
    lines: AsyncIterable[bytes],
    *,
    retention: timedelta,
    max_essays: int = MAX_ESSAYS_PER_REQUEST,
) -> EssaySetReceipt:
    """Store the essays of an NDJSON upload as a new set (in the caller's transaction).

    Raises InvalidEssaySet naming the first essay (and field) at fault; the caller's
    transaction then rolls back, so nothing of a refused upload stays.
    """
    now = datetime.now(UTC)
    set_id = uuid4()
    expires_at = now + retention
    await store.create(set_id, now, expires_at)
    digest = hashlib.sha256()
    first_seen: dict[str, int] = {}
    pending: list[EssayRecord] = []
    count = 0
    async for line in lines:
        if not line.strip():
            continue
        if count >= max_essays:
            raise InvalidEssaySet("essays", f"more than {max_essays} essays in one set")
        essay = _essay(line, count)
        if essay.essay_id in first_seen:
            raise InvalidEssaySet(
                f"essays[{count}].essay_id",
                f"duplicate of essays[{first_seen[essay.essay_id]}].essay_id",
            )
        first_seen[essay.essay_id] = count
        digest.update(essay_digest_line(essay.essay_id, essay.text_content))
        pending.append(EssayRecord(count, essay.essay_id, essay.text_content))
        count += 1
        if len(pending) >= WRITE_CHUNK:
            await store.add_essays(set_id, pending)
            pending = []
    if count == 0:
        raise InvalidEssaySet("essays", "the upload holds no essays")
    await store.add_essays(set_id, pending)
    sha = digest.hexdigest()
    await store.seal(set_id, count, sha)
    return EssaySetReceipt(set_id, count, sha, expires_at)


async def delete_expired_essay_sets(store: EssaySetStore, *, limit: int) -> int:
    """Delete up to `limit` sets past their retention; how many were deleted."""
    return await store.delete_expired(datetime.now(UTC), limit)
