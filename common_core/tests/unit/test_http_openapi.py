"""An app described by `mount_openapi`: answers keep the JSON of the dicts routes return, and the
document states errors, their headers and required query parameters."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from quart import Quart
from quart_schema import document_querystring, validate_response

from common_core.runtime.http import errors, mount_openapi, register_operational_routes


class _Out(BaseModel):
    name: str
    note: str | None = None
    extra: str | None = None


class _Query(BaseModel):
    name: str
    page: int = 1


def _apps(body: dict[str, Any]) -> tuple[Quart, Quart]:
    plain = Quart("plain")

    @plain.get("/thing")
    async def plain_thing() -> dict[str, Any]:
        return body

    described = Quart("described")
    mount_openapi(described, "test")
    register_operational_routes(described, {})

    @described.get("/thing")
    @validate_response(_Out)
    @errors(404, 503)
    @document_querystring(_Query)
    async def thing() -> dict[str, Any]:
        """A thing."""
        return body

    return plain, described


class TestAnswersKeepTheJsonOfTheDict:
    async def test_absent_optional_keys_stay_absent_and_nulls_stay_null(self) -> None:
        plain, described = _apps({"name": "é", "note": None})
        expected = await (await plain.test_client().get("/thing")).get_data()
        answer = await described.test_client().get("/thing")
        assert answer.status_code == 200
        assert await answer.get_data() == expected

    async def test_a_dict_that_does_not_fit_its_model_is_not_answered(self) -> None:
        _, described = _apps({"name": "x", "note": 3})
        assert (await described.test_client().get("/thing")).status_code == 500


class TestTheDocument:
    async def _document(self) -> dict[str, Any]:
        _, described = _apps({"name": "x"})
        document: dict[str, Any] = await (
            await described.test_client().get("/openapi.json")
        ).get_json()
        return document

    async def test_errors_have_the_error_body_and_a_503_its_retry_after_header(self) -> None:
        responses = (await self._document())["paths"]["/thing"]["get"]["responses"]
        assert responses["404"]["content"]["application/json"]["schema"]["title"] == "ErrorOut"
        assert "headers" not in responses["404"]
        assert responses["503"]["headers"]["Retry-After"]["required"] is True
        assert "headers" not in responses["503"]["content"]

    async def test_query_parameters_without_a_default_are_required(self) -> None:
        parameters = (await self._document())["paths"]["/thing"]["get"]["parameters"]
        assert {p["name"]: p["required"] for p in parameters} == {"name": True, "page": False}

    async def test_operational_routes_are_described_and_metrics_is_hidden(self) -> None:
        paths = (await self._document())["paths"]
        assert paths["/healthz"]["get"]["responses"]["200"]["description"] == "Liveness."
        assert set(paths["/healthz/ready"]["get"]["responses"]) == {"200", "503"}
        assert "/metrics" not in paths
