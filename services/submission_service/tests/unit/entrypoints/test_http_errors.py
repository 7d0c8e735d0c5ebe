"""The submission API's answer to a bug: a JSON 500 and one log line naming the route template,
never the raw path (an answer's path carries its learner's ids)."""

from __future__ import annotations

import json

from quart import Quart
from structlog.testing import capture_logs

from submission_service.entrypoints.http_errors import register_error_handlers

LEARNER = "learner-4f1c2a"


async def test_an_unhandled_error_is_a_json_500_logged_by_its_route() -> None:
    app = Quart(__name__)
    register_error_handlers(app)

    @app.get("/api/v1/learners/<learner_id>/answers")
    async def broken(learner_id: str) -> str:
        raise RuntimeError("a bug")

    with capture_logs() as logs:
        response = await app.test_client().get(f"/api/v1/learners/{LEARNER}/answers")

    assert response.status_code == 500
    assert json.loads(await response.get_data(as_text=True))["code"] == "internal_error"
    failed = [entry for entry in logs if entry["event"] == "unhandled_error"]
    assert [entry["route"] for entry in failed] == ["/api/v1/learners/<learner_id>/answers"]
    assert LEARNER not in repr(logs)
