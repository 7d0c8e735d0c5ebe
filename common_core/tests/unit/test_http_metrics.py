"""HTTP request metrics (common_core.runtime.http_metrics) on a Quart app built with the shared
pieces every service uses, driven by Quart's test client."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY
from quart import Quart, request
from werkzeug.exceptions import NotFound

from common_core.runtime.http import (
    register_database_error_handlers,
    register_http_error_handlers,
    register_operational_routes,
)
from common_core.runtime.http_metrics import method_label


def _requests(method: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "huleedu_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


def _observed(method: str, route: str) -> float:
    value = REGISTRY.get_sample_value(
        "huleedu_http_request_duration_seconds_count", {"method": method, "route": route}
    )
    return value or 0.0


def _routes_counted() -> set[str]:
    return {
        sample.labels["route"]
        for family in REGISTRY.collect()
        if family.name == "huleedu_http_requests"
        for sample in family.samples
    }


class _App:
    """An app with routes of its own (a fresh prefix per test: counters are process-wide)."""

    def __init__(self) -> None:
        self.prefix = f"/t{uuid.uuid4().hex[:12]}"
        self.app = Quart(__name__)
        register_operational_routes(self.app, {})
        register_http_error_handlers(self.app)
        register_database_error_handlers(self.app)
        prefix = self.prefix

        @self.app.get(f"{prefix}/items/<item_id>")
        async def item(item_id: str) -> tuple[dict[str, str], int]:
            if item_id == "missing":
                raise NotFound("no such item")
            return {"id": item_id}, 200

        @self.app.post(f"{prefix}/broken")
        async def broken() -> tuple[dict[str, str], int]:
            raise RuntimeError("a bug")

        @self.app.get(f"{prefix}/lost-commit")
        async def lost_commit() -> tuple[dict[str, str], int]:
            return {"status": "ok"}, 200

        @self.app.teardown_request
        async def commit(_exc: BaseException | None) -> None:
            # What a request-scoped transaction does when the database went away at commit.
            if request.path == f"{prefix}/lost-commit":
                raise ConnectionRefusedError("the database went away")


class TestRouteLabel:
    async def test_requests_are_counted_by_route_template_not_by_path(self) -> None:
        built = _App()
        client = built.app.test_client()
        route = f"{built.prefix}/items/<item_id>"

        first = await client.get(f"{built.prefix}/items/{uuid.uuid4()}")
        second = await client.get(f"{built.prefix}/items/{uuid.uuid4()}")

        assert (first.status_code, second.status_code) == (200, 200)
        assert _requests("GET", route, "200") == 2
        assert [r for r in _routes_counted() if r.startswith(f"{built.prefix}/items/")] == [route]

    async def test_a_path_no_rule_matches_is_counted_as_unmatched(self) -> None:
        built = _App()
        before = _requests("GET", "unmatched", "404")

        response = await built.app.test_client().get(f"{built.prefix}/nowhere/{uuid.uuid4()}")

        assert response.status_code == 404
        assert _requests("GET", "unmatched", "404") == before + 1
        assert not any(r.startswith(f"{built.prefix}/nowhere") for r in _routes_counted())

    async def test_operational_routes_are_not_counted(self) -> None:
        client = _App().app.test_client()

        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200

        assert {"/healthz", "/healthz/ready", "/metrics"} & _routes_counted() == set()


class TestStatusLabel:
    async def test_an_error_handlers_answer_is_counted_with_its_status(self) -> None:
        built = _App()

        response = await built.app.test_client().get(f"{built.prefix}/items/missing")

        assert response.status_code == 404
        assert _requests("GET", f"{built.prefix}/items/<item_id>", "404") == 1

    async def test_an_unhandled_error_is_counted_as_500(self) -> None:
        built = _App()

        response = await built.app.test_client().post(f"{built.prefix}/broken")

        assert response.status_code == 500
        assert _requests("POST", f"{built.prefix}/broken", "500") == 1

    async def test_a_failure_after_the_view_counts_the_503_sent_not_the_views_200(self) -> None:
        built = _App()
        route = f"{built.prefix}/lost-commit"

        response = await built.app.test_client().get(route)

        assert response.status_code == 503
        assert _requests("GET", route, "503") == 1
        assert _requests("GET", route, "200") == 0


class TestDuration:
    async def test_each_answered_request_is_observed_once_by_method_and_route(self) -> None:
        built = _App()
        client = built.app.test_client()
        route = f"{built.prefix}/items/<item_id>"

        await client.get(f"{built.prefix}/items/a")
        await client.get(f"{built.prefix}/items/missing")
        await client.post(f"{built.prefix}/broken")

        assert _observed("GET", route) == 2
        assert _observed("POST", f"{built.prefix}/broken") == 1


class TestMethodLabel:
    @pytest.mark.parametrize(
        ("method", "label"),
        [("GET", "GET"), ("DELETE", "DELETE"), ("BREW", "other"), ("get", "other")],
    )
    def test_only_standard_methods_become_label_values(self, method: str, label: str) -> None:
        assert method_label(method) == label
