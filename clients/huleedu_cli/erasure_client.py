"""The operators' erasure APIs as the client sees them: one learner's answer texts in the
submission service, one batch's essay texts in the CJ service."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from huleedu_cli.api_token import TOKEN_FILE_VARIABLE, TOKEN_VARIABLE, bearer_headers
from huleedu_cli.errors import ErasureFailedError
from huleedu_cli.service_errors import error_reason

DEFAULT_SUBMISSION_URL = "http://127.0.0.1:8001"
LEARNER_ERASE_SCOPE = "submission:erase"
BATCH_ERASE_SCOPE = "cj:erase"


class Erasure(BaseModel):
    """What an erasure removed, by kind, and the audit record the service wrote."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    erased: dict[str, int]
    already_erased: bool
    audit_id: str

    @field_validator("audit_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class LearnerErasure(Erasure):
    """`POST /api/erasures/learners`: `subject` is `user_id` or `anonymous_token`."""

    subject: str


class BatchErasure(Erasure):
    """`POST /api/v1/erasures/batches/<batch_id>`."""

    batch_id: str

    @field_validator("batch_id", mode="before")
    @classmethod
    def _batch_id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


E = TypeVar("E", bound=Erasure)


async def erase_learner(
    base_url: str,
    *,
    user_id: str | None = None,
    anonymous_token: str | None = None,
    api_token: str | None = None,
    timeout: float = 30.0,
) -> LearnerErasure:
    """Ask the submission service to erase one learner's answer texts (exactly one of
    `user_id` or `anonymous_token`)."""
    body = {"user_id": user_id} if user_id is not None else {"anonymous_token": anonymous_token}
    document = await _post(
        base_url,
        "/api/erasures/learners",
        body,
        api_token=api_token,
        timeout=timeout,
        service="submission service",
        scope=LEARNER_ERASE_SCOPE,
    )
    return _parsed(LearnerErasure, document, base_url)


async def erase_batch(
    base_url: str, batch_id: str, *, api_token: str | None = None, timeout: float = 30.0
) -> BatchErasure:
    """Ask the CJ service to erase one batch's essay texts."""
    document = await _post(
        base_url,
        f"/api/v1/erasures/batches/{batch_id}",
        None,
        api_token=api_token,
        timeout=timeout,
        service="CJ service",
        scope=BATCH_ERASE_SCOPE,
        not_found=f"no batch {batch_id}",
    )
    return _parsed(BatchErasure, document, base_url)


def _parsed(model: type[E], document: dict[str, Any], base_url: str) -> E:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ErasureFailedError(f"unexpected erasure answer from {base_url}") from exc


async def _post(
    base_url: str,
    path: str,
    body: dict[str, Any] | None,
    *,
    api_token: str | None,
    timeout: float,
    service: str,
    scope: str,
    not_found: str | None = None,
) -> dict[str, Any]:
    base = base_url.rstrip("/")
    async with httpx.AsyncClient(
        base_url=base, timeout=timeout, headers=bearer_headers(api_token)
    ) as http:
        try:
            response = await http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ErasureFailedError(
                f"{service} at {base} unreachable: {type(exc).__name__}"
            ) from exc
    if response.status_code in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        raise ErasureFailedError(
            f"{service} at {base} refused the credentials ({response.status_code}"
            f"{error_reason(response)}): set {TOKEN_VARIABLE} or {TOKEN_FILE_VARIABLE} to a token "
            f"with the scope {scope}"
        )
    if response.status_code == httpx.codes.NOT_FOUND and not_found is not None:
        raise ErasureFailedError(f"{not_found} at {base} (404): nothing was erased")
    if response.is_error:
        raise ErasureFailedError(
            f"{service} answered {response.status_code} for {path}{error_reason(response)}"
        )
    try:
        document = response.json()
    except ValueError as exc:
        raise ErasureFailedError(f"{service} sent non-JSON for {path}") from exc
    if not isinstance(document, dict):
        raise ErasureFailedError(f"{service} sent a non-object for {path}")
    return document
