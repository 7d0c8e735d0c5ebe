"""The operators' erasure route of the LLM provider on the real database: scope `llm:erase`,
waiting batch-mode requests of a CJ batch deleted, those at a provider counted."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from common_core.runtime.http_auth import sign_token
from common_core.runtime.kernel import running_workers, service_runtime
from llm_provider_service.adapters.postgres import PostgresUnitOfWork
from llm_provider_service.application.ports import QueuedRequest
from llm_provider_service.config import Settings
from llm_provider_service.entrypoints.runtime import SERVICE

pytestmark = pytest.mark.integration

SECRET = "e" * 48


def _request(key: str) -> QueuedRequest:
    return QueuedRequest(
        request_id=uuid.uuid4(),
        kind="comparison",
        provider="openai",
        model="gpt-4o-mini",
        envelope='{"essays": "learner text"}',
        message_key=key,
    )


class TestErasureRoute:
    async def test_only_llm_erase_may_drop_a_batchs_waiting_requests(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = Settings(
            database_url=database_url,
            kafka_bootstrap_servers=kafka_bootstrap_servers,
            topic_prefix=f"t{uuid.uuid4().hex[:12]}",
            auth_jwt_secret=SECRET,
            # The running batch worker leaves the requests waiting (none is due for an hour).
            llm_batch_window_seconds=3600.0,
        )

        def bearer(*scopes: str) -> dict[str, str]:
            token = sign_token(
                SECRET,
                subject="ops",
                scopes=scopes,
                issuer=settings.auth_issuer,
                audience=settings.auth_audience,
            )
            return {"Authorization": f"Bearer {token}"}

        batch_id = uuid.uuid4()
        async with (
            service_runtime(SERVICE, settings) as runtime,
            running_workers(runtime),
        ):
            async with runtime.sessions() as session:
                uow = PostgresUnitOfWork(session)
                for key in (str(batch_id), str(batch_id), "another-batch"):
                    assert await uow.batches.add_request(_request(key))
                await session.commit()
            client = runtime.app.test_client()
            path = f"/api/v1/erasures/batches/{batch_id}"
            reader = await client.post(path, headers=bearer("llm:read"))
            erased = await client.post(path, headers=bearer("llm:erase"))
            again = await client.post(path, headers=bearer("llm:erase"))
            malformed = await client.post(
                "/api/v1/erasures/batches/not-a-uuid", headers=bearer("llm:erase")
            )
            async with runtime.sessions() as session:
                keys = (await session.execute(text("SELECT message_key FROM batch_items"))).all()
        assert reader.status_code == 403
        assert (await reader.get_json())["code"] == "insufficient_scope"
        assert erased.status_code == 200
        assert await erased.get_json() == {
            "batch_id": str(batch_id),
            "waiting_requests": 2,
            "in_flight_requests": 0,
        }
        assert (await again.get_json())["waiting_requests"] == 0
        assert malformed.status_code == 400
        assert (await malformed.get_json())["field"] == "batch_id"
        assert [k for (k,) in keys] == ["another-batch"]
