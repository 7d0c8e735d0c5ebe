"""Webhook target checks and delivery retries, over the fake delivery queue and scripted DNS
and HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from submission_service.application.ports import DeliveryQueue
from submission_service.application.webhooks import (
    NOT_DECRYPTABLE,
    WebhookPolicy,
    check_target,
    deliver_due,
    resolve_target,
)
from submission_service.domain.errors import InvalidInputError, WebhookTargetRefusedError
from submission_service.domain.webhooks import SIGNATURE_HEADER, verify_signature
from submission_service.testing.fakes import (
    FakeTables,
    FakeUnitOfWork,
    ScriptedResolver,
    ScriptedSender,
    StoredDelivery,
    StoredWebhook,
)

POLICY = WebhookPolicy(
    allowlist=("hooks.internal",),
    max_attempts=3,
    backoff_base_seconds=1.0,
    backoff_max_seconds=10.0,
    timeout_seconds=1.0,
)
RESOLVER = (
    ScriptedResolver()
    .script("example.org", ["93.184.215.14"])
    .script("sneaky.example", ["93.184.215.14", "10.1.2.3"])
    .script("hooks.internal", ["10.0.0.5"])
)


def _queued(url: str = "https://example.org/hook", secret: str | None = "secret") -> Queue:
    """A delivery queue holding one pending delivery to `url`."""
    tables = FakeTables()
    webhook = StoredWebhook(uuid4(), uuid4(), url, secret, datetime.now(UTC))
    delivery = StoredDelivery(uuid4(), webhook.id, "assessment.completed", {"n": 1})
    tables.webhooks[webhook.id] = webhook
    tables.deliveries[delivery.id] = delivery
    return Queue(FakeUnitOfWork(tables).webhooks, delivery)


@dataclass
class Queue:
    """The fake delivery queue and the delivery it holds."""

    queue: DeliveryQueue
    delivery: StoredDelivery

    def attempts(self) -> list[tuple[bool, int | None, str | None]]:
        """(succeeded, HTTP status, error) of each attempt so far."""
        return [(a.succeeded, a.http_status, a.error) for a in self.delivery.attempts]

    def time_passes(self) -> None:
        """The backoff elapses: the delivery is due again."""
        self.delivery.next_attempt_at = datetime.now(UTC)


class TestCheckTarget:
    async def test_public_hosts_and_allowlisted_hosts_pass(self) -> None:
        await check_target("https://example.org/x", resolver=RESOLVER, allowlist=POLICY.allowlist)
        await check_target("http://hooks.internal/x", resolver=RESOLVER, allowlist=POLICY.allowlist)

    async def test_a_host_with_any_internal_address_is_refused(self) -> None:
        with pytest.raises(WebhookTargetRefusedError) as caught:
            await check_target("https://sneaky.example/", resolver=RESOLVER, allowlist=())
        assert caught.value.details["reason"] == "private"

    async def test_unresolvable_hosts_are_refused(self) -> None:
        with pytest.raises(WebhookTargetRefusedError):
            await check_target("https://nowhere.example/", resolver=RESOLVER, allowlist=())

    @pytest.mark.parametrize("url", ["ftp://example.org/", "example.org", "http://:80/"])
    async def test_non_http_urls_are_invalid(self, url: str) -> None:
        with pytest.raises(InvalidInputError):
            await check_target(url, resolver=RESOLVER, allowlist=())

    async def test_the_target_holds_every_checked_address_of_one_lookup(self) -> None:
        resolver = ScriptedResolver().script(
            "example.org", ["93.184.215.14", "2606:4700::6810:85e5"], ["127.0.0.1"]
        )

        target = await resolve_target(
            "https://Example.org:8443/h?x=1", resolver=resolver, allowlist=()
        )

        assert target.addresses == ("93.184.215.14", "2606:4700::6810:85e5")
        assert (target.url.host, target.url.port, target.url.target) == (
            "example.org",
            8443,
            "/h?x=1",
        )
        assert resolver.lookups["example.org"] == 1

    async def test_an_allowlisted_host_is_pinned_to_its_internal_address(self) -> None:
        target = await resolve_target(
            "http://hooks.internal/x", resolver=RESOLVER, allowlist=POLICY.allowlist
        )

        assert target.addresses == ("10.0.0.5",)


class TestDeliverDue:
    async def test_success_is_signed_and_recorded(self) -> None:
        held, sender = _queued(), ScriptedSender([204])

        await deliver_due(held.queue, sender, RESOLVER, POLICY)

        assert held.delivery.status == "delivered"
        target, body, headers = sender.sent[0]
        assert verify_signature("secret", headers[SIGNATURE_HEADER], body)
        assert target.addresses == ("93.184.215.14",)
        assert target.url.host_header == "example.org"

    async def test_failures_are_retried_with_backoff_then_given_up(self) -> None:
        held, sender = _queued(), ScriptedSender([500, 502, 503])

        await deliver_due(held.queue, sender, RESOLVER, POLICY)
        retry_at = held.delivery.next_attempt_at
        for _ in range(2):
            held.time_passes()
            await deliver_due(held.queue, sender, RESOLVER, POLICY)

        assert [status for _, status, _ in held.attempts()] == [500, 502, 503]
        assert retry_at > held.delivery.attempts[0].attempted_at
        assert held.delivery.status == "failed"
        held.time_passes()
        assert await deliver_due(held.queue, sender, RESOLVER, POLICY) == 0

    async def test_a_target_that_now_resolves_inside_is_refused_at_delivery(self) -> None:
        held, sender = _queued("https://sneaky.example/hook"), ScriptedSender([200])

        await deliver_due(held.queue, sender, RESOLVER, POLICY)

        assert sender.sent == []
        [(succeeded, status, error)] = held.attempts()
        assert not succeeded
        assert status is None
        assert error is not None
        assert error.startswith("refused")

    async def test_a_name_rebound_to_loopback_after_registration_is_never_sent_to(self) -> None:
        held, sender = _queued("https://rebind.example/hook"), ScriptedSender([200])
        resolver = ScriptedResolver().script("rebind.example", ["93.184.215.14"], ["127.0.0.1"])
        await check_target(  # registration
            "https://rebind.example/hook", resolver=resolver, allowlist=()
        )

        await deliver_due(held.queue, sender, resolver, POLICY)

        assert sender.sent == []
        [(succeeded, status, error)] = held.attempts()
        assert (succeeded, status) == (False, None)
        assert error == "refused: the webhook URL resolves to a refused address (loopback)"

    async def test_the_sender_gets_the_answer_that_was_checked_and_nothing_resolves_again(
        self,
    ) -> None:
        held, sender = _queued("https://rebind.example/hook"), ScriptedSender([200])
        resolver = ScriptedResolver().script("rebind.example", ["93.184.215.14"], ["127.0.0.1"])

        await deliver_due(held.queue, sender, resolver, POLICY)

        [(target, _, _)] = sender.sent
        assert target.addresses == ("93.184.215.14",)
        assert resolver.lookups["rebind.example"] == 1
        assert held.delivery.status == "delivered"

    async def test_a_secret_that_does_not_decrypt_is_refused_without_sending(self) -> None:
        held, sender = _queued(secret=None), ScriptedSender([200])

        await deliver_due(held.queue, sender, RESOLVER, POLICY)

        assert sender.sent == []
        [(succeeded, _, error)] = held.attempts()
        assert not succeeded
        assert error == f"refused: {NOT_DECRYPTABLE}"
