"""`python -m cj_assessment_service` with bearer tokens and an operations port: the public port
answers the API (scoped tokens only) and its document, the operations port `/metrics` and the
health endpoints, and neither answers the other's routes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cj_assessment_service.testing.process import process_env
from cj_assessment_service.testing.requests import unique_prefix
from common_core.events.cj import EssayToProcess
from common_core.runtime.http_auth import sign_token
from common_core.testing import eventually
from common_core.testing.service_process import free_tcp_port, running_service
from huleedu_cli.errors import EssayUploadError, StatusUnavailableError
from huleedu_cli.essay_upload import upload_essay_set
from huleedu_cli.status_client import CJStatusClient

pytestmark = pytest.mark.integration

AUTH_SECRET = "the-cj-test-secret-of-32-bytes-or-more"


def _token(*scopes: str, audience: str = "huleedu-cj") -> str:
    return sign_token(
        AUTH_SECRET, subject="teacher-1", scopes=scopes, issuer="huleedu", audience=audience
    )


class _Instance:
    def __init__(self, public: str, ops: str, log_path: Path) -> None:
        self.public = public
        self.ops = ops
        self.log_path = log_path


@pytest.fixture(scope="module")
async def instance(
    database_url: str, kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[_Instance]:
    ops_port = free_tcp_port()
    env = process_env(
        database_url,
        kafka_bootstrap_servers,
        unique_prefix(),
        AUTH_JWT_SECRET=AUTH_SECRET,
        OPS_HTTP_PORT=str(ops_port),
    )
    async with running_service(
        "cj_assessment_service",
        env=env,
        log_dir=tmp_path_factory.mktemp("cj-auth"),
        ready_path="/openapi.json",
    ) as service:
        ops = f"http://127.0.0.1:{ops_port}"

        async def ready() -> bool:
            async with httpx.AsyncClient(timeout=2.0) as client:
                return (await client.get(f"{ops}/healthz/ready")).status_code == 200

        await eventually(ready, timeout=60, interval=0.2, what="ready on the operations port")
        yield _Instance(service.url, ops, service.log_path)


class TestBearerTokens:
    async def test_no_token_is_a_401_with_a_bearer_challenge(self, instance: _Instance) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            reply = await client.get(f"{instance.public}/api/v1/batches/{uuid.uuid4()}")
        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="cj_assessment_service"'
        assert reply.json() == {
            "code": "authentication_required",
            "message": "send Authorization: Bearer <JWT>",
        }

    @pytest.mark.parametrize(
        "token",
        [
            _token("cj:read", audience="huleedu-llm"),
            sign_token(
                "another-secret-of-32-bytes-or-more!!",
                subject="x",
                scopes=["cj:read"],
                issuer="huleedu",
                audience="huleedu-cj",
            ),
            "not-a-jwt",
        ],
    )
    async def test_a_bad_token_is_an_invalid_token(self, instance: _Instance, token: str) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            reply = await client.get(
                f"{instance.public}/api/v1/batches/{uuid.uuid4()}",
                headers={"Authorization": f"Bearer {token}"},
            )
        assert reply.status_code == 401
        assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
        assert reply.json()["code"] == "invalid_token"

    async def test_reads_need_cj_read_and_writes_cj_write(self, instance: _Instance) -> None:
        missing = f"{instance.public}/api/v1/batches/{uuid.uuid4()}"
        reader = {"Authorization": f"Bearer {_token('cj:read')}"}
        writer = {"Authorization": f"Bearer {_token('cj:read', 'cj:write')}"}
        async with httpx.AsyncClient(timeout=5.0) as client:
            read = await client.get(missing, headers=reader)
            no_write = await client.post(f"{missing}/cancel", headers=reader)
            upload = await client.post(
                f"{instance.public}/api/v1/essay-sets", content=b"", headers=reader
            )
            written = await client.post(f"{missing}/cancel", headers=writer)
            no_read = await client.get(
                missing, headers={"Authorization": f"Bearer {_token('llm:read')}"}
            )
        assert read.status_code == 404  # authenticated: the batch does not exist
        assert no_write.status_code == 403
        assert no_write.headers["WWW-Authenticate"] == (
            'Bearer realm="cj_assessment_service", error="insufficient_scope", scope="cj:write"'
        )
        assert upload.status_code == 403
        assert written.status_code == 404
        assert no_read.status_code == 403
        assert no_read.json()["code"] == "insufficient_scope"

    async def test_no_token_or_secret_reaches_the_log(self, instance: _Instance) -> None:
        token = _token("cj:read")
        async with httpx.AsyncClient(timeout=5.0) as client:
            await client.get(
                f"{instance.public}/api/v1/batches/{uuid.uuid4()}",
                headers={"Authorization": f"Bearer {token}"},
            )
        log_text = instance.log_path.read_text()
        assert token not in log_text
        assert AUTH_SECRET not in log_text


class TestOperationsPort:
    async def test_operational_routes_answer_only_on_the_operations_port(
        self, instance: _Instance
    ) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            ops_metrics = await client.get(f"{instance.ops}/metrics")
            ops_health = await client.get(f"{instance.ops}/healthz")
            public_metrics = await client.get(f"{instance.public}/metrics")
            public_ready = await client.get(f"{instance.public}/healthz/ready")
            public_document = await client.get(f"{instance.public}/openapi.json")
        assert ops_metrics.status_code == 200
        assert "huleedu_" in ops_metrics.text
        assert ops_health.json() == {"status": "ok"}
        assert public_metrics.status_code == 404
        assert public_ready.status_code == 404
        assert public_document.status_code == 200

    async def test_the_api_is_not_served_on_the_operations_port(self, instance: _Instance) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            reply = await client.get(
                f"{instance.ops}/api/v1/batches/{uuid.uuid4()}",
                headers={"Authorization": f"Bearer {_token('cj:read')}"},
            )
            document = await client.get(f"{instance.ops}/openapi.json")
        assert reply.status_code == 404
        assert document.status_code == 404


class TestTheCliSendsItsToken:
    async def test_status_with_a_token_and_without(self, instance: _Instance) -> None:
        async with CJStatusClient(instance.public, api_token=_token("cj:read")) as client:
            assert await client.batch_for_entity(f"nobody-{uuid.uuid4()}") is None
        async with CJStatusClient(instance.public) as client:
            with pytest.raises(StatusUnavailableError, match="refused the credentials"):
                await client.batch_for_entity("nobody")

    # A refused upload is read and dropped up to 1 MiB, so the CLI hears the 403 even while it
    # is still streaming the body (400 essays: several chunks, about 250 KB).
    @pytest.mark.parametrize("count", [3, 400])
    async def test_an_essay_set_upload_needs_cj_write(
        self, instance: _Instance, count: int
    ) -> None:
        text = "An essay about refused uploads. " * 20
        essays = [EssayToProcess(essay_id=f"e{i}", text_content=text) for i in range(count)]
        writer = _token("cj:read", "cj:write")
        reference = await upload_essay_set(instance.public, essays, api_token=writer)
        assert reference.essay_set_id is not None
        with pytest.raises(EssayUploadError, match="403"):
            await upload_essay_set(instance.public, essays, api_token=_token("cj:read"))
