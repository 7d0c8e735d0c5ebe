"""Webhook delivery that cannot be turned against the service, over real HTTP on 127.0.0.1.

Delivery connects only to the addresses its one DNS lookup returned and the SSRF guard checked
(a DNS answer that changes afterwards is never used), keeps the URL's own Host header and TLS
server name, and the signing secret is stored only as ciphertext.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from dishka import AsyncContainer, Provider, Scope
from quart.typing import TestClientProtocol as QuartTestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.runtime.kernel import prepare_infrastructure
from submission_service.adapters.webhook_http import HttpxWebhookSender
from submission_service.adapters.webhook_secrets import WebhookSecretBox
from submission_service.application.ports import (
    HostResolver,
    Transactions,
    WebhookSender,
)
from submission_service.application.webhooks import WebhookPolicy, deliver_due
from submission_service.config import Settings
from submission_service.di import make_container
from submission_service.domain.webhooks import (
    SIGNATURE_HEADER,
    WebhookTarget,
    WebhookUrl,
    verify_signature,
)
from submission_service.entrypoints.http import create_app
from submission_service.entrypoints.periodic import CommittedDeliveryQueue
from submission_service.entrypoints.runtime import SERVICE
from submission_service.testing.fakes import ScriptedResolver
from submission_service.testing.harness import (
    TEST_WEBHOOK_SECRET_KEY,
    settings_for_tests,
    user_headers,
)
from submission_service.testing.webhooks import receiving

pytestmark = pytest.mark.integration

# Resolves only through the resolver stand-in: if it is reached, the pinned address was used.
ALLOWED_HOST = "hooks.allowed.test"


@dataclass
class Service:
    """The submission service's app and container with the resolver stand-in bound."""

    settings: Settings
    container: AsyncContainer
    client: QuartTestClient
    resolver: ScriptedResolver


@pytest.fixture(scope="module")
async def service(database_url: str, kafka_bootstrap_servers: str) -> AsyncIterator[Service]:
    # One attempt per delivery: nothing is left pending for the next test's dispatcher pass.
    settings = settings_for_tests(
        database_url,
        kafka_bootstrap_servers,
        webhook_allowlist=[ALLOWED_HOST],
        webhook_max_attempts=1,
    )
    await prepare_infrastructure(SERVICE, settings)
    resolver = ScriptedResolver()
    stand_in = Provider(scope=Scope.APP)
    stand_in.provide(lambda: resolver, provides=HostResolver)
    container = make_container(settings, stand_in)
    try:
        yield Service(settings, container, create_app(container, settings).test_client(), resolver)
    finally:
        await container.close()


async def _registered(service: Service, url: str) -> tuple[dict[str, str], str, str, str]:
    """A new assessment with a webhook on `url`: (headers, assessment id, webhook id, secret)."""
    headers = user_headers(f"learner-{uuid.uuid4()}")
    started = await service.client.post(
        "/api/assessments", json={"definition_id": "intro-writing"}, headers=headers
    )
    aid = str((await started.get_json())["assessment_id"])
    reply = await service.client.post(
        f"/api/assessments/{aid}/webhook", json={"url": url}, headers=headers
    )
    assert reply.status_code == 201, await reply.get_data()
    body = await reply.get_json()
    return headers, aid, str(body["webhook_id"]), str(body["secret"])


async def _deliver_once(service: Service, aid: str, webhook_id: str, sender: WebhookSender) -> None:
    """Queue one completion delivery for the webhook and run one dispatcher pass."""
    transactions = await service.container.get(Transactions)
    async with transactions() as uow:
        await uow.webhooks.enqueue_delivery(
            uuid.UUID(webhook_id),
            "assessment.completed",
            {"event": "assessment.completed", "assessment_id": aid},
        )
    await deliver_due(
        CommittedDeliveryQueue(transactions),
        sender,
        await service.container.get(HostResolver),
        await service.container.get(WebhookPolicy),
    )


async def _attempts(service: Service, headers: dict[str, str], aid: str) -> list[dict[str, Any]]:
    reply = await service.client.get(f"/api/assessments/{aid}/status", headers=headers)
    [webhook] = (await reply.get_json())["webhooks"]
    [delivery] = webhook["deliveries"]
    attempts: list[dict[str, Any]] = delivery["attempts"]
    return attempts


class TestDnsRebinding:
    async def test_a_name_rebound_to_loopback_after_registration_is_never_delivered_to(
        self, service: Service, tmp_path: Path
    ) -> None:
        async with receiving(tmp_path) as receiver:
            # The system resolves localhost to the receiver; the stand-in first says public.
            service.resolver.script("localhost", ["93.184.215.14"], ["127.0.0.1"])
            headers, aid, webhook_id, _ = await _registered(
                service, f"http://localhost:{receiver.port}/hook"
            )

            await _deliver_once(
                service, aid, webhook_id, await service.container.get(WebhookSender)
            )

            [attempt] = await _attempts(service, headers, aid)
            assert receiver.calls == []
        assert attempt["succeeded"] is False
        assert attempt["http_status"] is None
        assert attempt["error"] == (
            "refused: the webhook URL resolves to a refused address (loopback)"
        )
        assert service.resolver.lookups["localhost"] == 2  # registration, then one per attempt

    async def test_the_sender_connects_to_the_pinned_address_and_never_resolves_the_name(
        self, service: Service, tmp_path: Path
    ) -> None:
        sender = await service.container.get(WebhookSender)
        async with receiving(tmp_path) as receiver:
            # localhost is 127.0.0.1 (the receiver) to the system; the check pinned 127.0.0.2.
            to_localhost = WebhookTarget(
                WebhookUrl("http", "localhost", receiver.port, "/hook"), ("127.0.0.2",)
            )
            with pytest.raises(httpx.ConnectError):
                await sender.post(to_localhost, b"{}", {"Content-Type": "application/json"})
            assert receiver.calls == []

            # A name no resolver knows arrives, under its own Host, at the pinned address; an
            # unreachable first address falls through to the next checked one.
            unknown = WebhookTarget(
                WebhookUrl("http", "pinned.invalid", receiver.port, "/hook"),
                ("127.0.0.2", "127.0.0.1"),
            )
            status = await sender.post(unknown, b"{}", {"Content-Type": "application/json"})

            [(received_headers, _)] = receiver.calls
        assert status == 204
        assert received_headers["host"] == f"pinned.invalid:{receiver.port}"


class TestAllowlistedDelivery:
    async def test_an_allowlisted_receiver_gets_the_original_host_and_a_valid_signature(
        self, service: Service, tmp_path: Path
    ) -> None:
        async with receiving(tmp_path) as receiver:
            service.resolver.script(ALLOWED_HOST, ["127.0.0.1"])
            headers, aid, webhook_id, secret = await _registered(
                service, f"http://{ALLOWED_HOST}:{receiver.port}/hook"
            )

            await _deliver_once(
                service, aid, webhook_id, await service.container.get(WebhookSender)
            )

            [(received_headers, body)] = receiver.calls
            [attempt] = await _attempts(service, headers, aid)
        assert (attempt["succeeded"], attempt["http_status"]) == (True, 204)
        assert received_headers["host"] == f"{ALLOWED_HOST}:{receiver.port}"
        assert verify_signature(secret, received_headers[SIGNATURE_HEADER.lower()], body)
        assert aid.encode() in body

    async def test_a_redirect_is_not_followed(self, service: Service, tmp_path: Path) -> None:
        async with receiving(tmp_path) as receiver:
            service.resolver.script(ALLOWED_HOST, ["127.0.0.1"])
            headers, aid, webhook_id, _ = await _registered(
                service, f"http://{ALLOWED_HOST}:{receiver.port}/elsewhere"
            )

            await _deliver_once(
                service, aid, webhook_id, await service.container.get(WebhookSender)
            )

            [attempt] = await _attempts(service, headers, aid)
            assert (receiver.redirects, receiver.calls) == (1, [])
        assert (attempt["succeeded"], attempt["http_status"]) == (False, 307)
        assert attempt["error"] == "HTTP 307"

    async def test_https_keeps_the_original_name_for_sni_and_the_certificate_check(
        self, service: Service, tmp_path: Path
    ) -> None:
        authority = trustme.CA()
        client_context = ssl.create_default_context()
        authority.configure_trust(client_context)
        sender = HttpxWebhookSender(timeout_seconds=5.0, verify=client_context)
        try:
            async with receiving(tmp_path, authority.issue_cert(ALLOWED_HOST)) as receiver:
                service.resolver.script(ALLOWED_HOST, ["127.0.0.1"])
                headers, aid, webhook_id, secret = await _registered(
                    service, f"https://{ALLOWED_HOST}:{receiver.port}/hook"
                )

                await _deliver_once(service, aid, webhook_id, sender)

                [(received_headers, body)] = receiver.calls
                [attempt] = await _attempts(service, headers, aid)
        finally:
            await sender.aclose()
        assert (attempt["succeeded"], attempt["http_status"]) == (True, 204)
        assert receiver.server_names == [ALLOWED_HOST]
        assert received_headers["host"] == f"{ALLOWED_HOST}:{receiver.port}"
        assert verify_signature(secret, received_headers[SIGNATURE_HEADER.lower()], body)

    async def test_https_to_a_certificate_for_another_name_is_not_delivered(
        self, service: Service, tmp_path: Path
    ) -> None:
        authority = trustme.CA()
        client_context = ssl.create_default_context()
        authority.configure_trust(client_context)
        sender = HttpxWebhookSender(timeout_seconds=5.0, verify=client_context)
        try:
            async with receiving(tmp_path, authority.issue_cert("other.test")) as receiver:
                service.resolver.script(ALLOWED_HOST, ["127.0.0.1"])
                headers, aid, webhook_id, _ = await _registered(
                    service, f"https://{ALLOWED_HOST}:{receiver.port}/hook"
                )

                await _deliver_once(service, aid, webhook_id, sender)

                [attempt] = await _attempts(service, headers, aid)
                assert receiver.calls == []
        finally:
            await sender.aclose()
        assert attempt["succeeded"] is False
        assert "CERTIFICATE_VERIFY_FAILED" in attempt["error"]
        assert receiver.server_names == [ALLOWED_HOST]


class TestSecretsAtRest:
    async def test_the_stored_secret_is_ciphertext_that_decrypts_back(
        self, service: Service
    ) -> None:
        service.resolver.script(ALLOWED_HOST, ["127.0.0.1"])
        _, _, webhook_id, secret = await _registered(service, f"http://{ALLOWED_HOST}/hook")
        engine = await service.container.get(AsyncEngine)

        async with engine.connect() as connection:
            stored = await connection.scalar(
                text("SELECT secret_ciphertext FROM webhooks WHERE id = :id"), {"id": webhook_id}
            )
            whole_row = await connection.scalar(
                text("SELECT to_jsonb(w)::text FROM webhooks w WHERE id = :id"), {"id": webhook_id}
            )

        assert isinstance(stored, str)
        assert secret not in whole_row
        assert WebhookSecretBox([TEST_WEBHOOK_SECRET_KEY]).decrypt(stored) == secret

    async def test_the_column_refuses_a_plain_secret(self, service: Service) -> None:
        service.resolver.script(ALLOWED_HOST, ["127.0.0.1"])
        _, _, webhook_id, secret = await _registered(service, f"http://{ALLOWED_HOST}/hook")
        engine = await service.container.get(AsyncEngine)

        with pytest.raises(IntegrityError, match="ck_webhooks_secret_ciphertext_is_fernet"):
            async with engine.begin() as connection:
                await connection.execute(
                    text("UPDATE webhooks SET secret_ciphertext = :plain WHERE id = :id"),
                    {"plain": secret, "id": webhook_id},
                )
