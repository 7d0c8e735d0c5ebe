from __future__ import annotations

import httpx
import pytest

from huleedu_cli.errors import StatusUnavailableError
from huleedu_cli.status_client import CJStatusClient

BATCH = {
    "batch_id": 42,
    "entity_ref": "ref-1",
    "state": "WAITING_CALLBACKS",
    "progress": {
        "essays": 6,
        "budget": 15,
        "planned": 15,
        "completed": 9,
        "failed": 1,
        "pending": 5,
        "percent_complete": 66.7,
    },
    "created_at": "2026-01-01T00:00:00Z",
}


def fake_cj_api(request: httpx.Request) -> httpx.Response:
    """A stand-in for the CJ service's batch endpoints."""
    if request.url.path == "/api/v1/batches":
        if request.url.params.get("entity_ref") == "ref-1":
            return httpx.Response(200, json=BATCH)
        return httpx.Response(404, json={"code": "not_found", "message": "no batch"})
    if request.url.path == "/api/v1/batches/42/results":
        return httpx.Response(200, json={"batch_id": 42, "rankings": []})
    if request.url.path == "/api/v1/batches/broken/results":
        return httpx.Response(500, text="boom")
    return httpx.Response(404)


def client() -> CJStatusClient:
    return CJStatusClient("http://cj.test/", transport=httpx.MockTransport(fake_cj_api))


class TestBatchStatus:
    async def test_known_entity_gives_state_and_progress(self) -> None:
        async with client() as cj:
            status = await cj.batch_for_entity("ref-1")
        assert status is not None
        assert (status.batch_id, status.state) == ("42", "WAITING_CALLBACKS")
        assert status.progress.completed == 9
        assert status.progress.percent_complete == pytest.approx(66.7)

    async def test_unknown_entity_is_none_until_the_batch_exists(self) -> None:
        async with client() as cj:
            assert await cj.batch_for_entity("ref-2") is None

    async def test_results_are_returned_as_json(self) -> None:
        async with client() as cj:
            assert await cj.batch_results("42") == {"batch_id": 42, "rankings": []}

    async def test_server_error_is_a_status_error(self) -> None:
        async with client() as cj:
            with pytest.raises(StatusUnavailableError, match="answered 500"):
                await cj.batch_results("broken")

    async def test_unreachable_service_is_a_status_error(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        async with CJStatusClient("http://cj.test", transport=httpx.MockTransport(refuse)) as cj:
            with pytest.raises(StatusUnavailableError, match="unreachable"):
                await cj.batch_for_entity("ref-1")
