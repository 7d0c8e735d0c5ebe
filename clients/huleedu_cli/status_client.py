"""The CJ service's HTTP API as the client sees it: batch progress and results."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from huleedu_cli.api_token import TOKEN_FILE_VARIABLE, TOKEN_VARIABLE, bearer_headers
from huleedu_cli.errors import StatusUnavailableError

DEFAULT_CJ_URL = "http://127.0.0.1:8003"


class BatchProgress(BaseModel):
    """Comparison counters of a batch, as reported by the CJ service."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    essays: int = 0
    budget: int | None = None
    planned: int = 0
    completed: int = 0
    failed: int = 0
    pending: int = 0
    percent_complete: float = Field(default=0.0, ge=0.0)


class BatchStatus(BaseModel):
    """`GET /api/v1/batches?entity_ref=X`: where a batch stands."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    batch_id: str
    entity_ref: str
    state: str
    progress: BatchProgress = Field(default_factory=BatchProgress)

    @field_validator("batch_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class CJStatusClient:
    """httpx client for the CJ service's batch endpoints."""

    def __init__(
        self,
        base_url: str = DEFAULT_CJ_URL,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        api_token: str | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=timeout,
            transport=transport,
            headers=bearer_headers(api_token),
        )

    async def __aenter__(self) -> CJStatusClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def batch_for_entity(self, entity_ref: str) -> BatchStatus | None:
        """The batch of an upstream reference, or None while the service has not created it."""
        document = await self._get_json("/api/v1/batches", params={"entity_ref": entity_ref})
        if document is None:
            return None
        try:
            return BatchStatus.model_validate(document)
        except ValidationError as exc:
            raise StatusUnavailableError(f"unexpected batch status from {self._base_url}") from exc

    async def batch_results(self, batch_id: str) -> dict[str, Any] | None:
        """`GET /api/v1/batches/{batch_id}/results` as JSON, or None if the batch is unknown."""
        return await self._get_json(f"/api/v1/batches/{batch_id}/results")

    async def _get_json(
        self, path: str, *, params: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise StatusUnavailableError(
                f"CJ service at {self._base_url} unreachable: {type(exc).__name__}"
            ) from exc
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
            raise StatusUnavailableError(
                f"CJ service at {self._base_url} refused the credentials "
                f"({response.status_code}): set {TOKEN_VARIABLE} or {TOKEN_FILE_VARIABLE} "
                "to a token with the scope cj:read"
            )
        if response.is_error:
            raise StatusUnavailableError(
                f"CJ service answered {response.status_code} for {path}: {response.text[:200]}"
            )
        try:
            document = response.json()
        except ValueError as exc:
            raise StatusUnavailableError(f"CJ service sent non-JSON for {path}") from exc
        if not isinstance(document, dict):
            raise StatusUnavailableError(f"CJ service sent a non-object for {path}")
        return document
