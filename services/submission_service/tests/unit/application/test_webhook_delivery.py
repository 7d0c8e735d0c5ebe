"""Webhook target checks and delivery retries, with fakes for DNS, HTTP and the queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid4

import pytest

from submission_service.application.ports import WebhookDelivery
from submission_service.application.webhooks import (
    NOT_DECRYPTABLE,
    WebhookPolicy,
    check_target,
    deliver_due,
    resolve_target,
)
from submission_service.domain.errors import InvalidInputError, WebhookTargetRefusedError
from submission_service.domain.webhooks import SIGNATURE_HEADER, WebhookTarget, verify_signature


class FakeResolver:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.table:
            raise OSError("no such host")
        return self.table[host]


@dataclass
class RebindingResolver:
    """A name whose DNS answers change: each lookup gets the next answer (the last repeats)."""

    answers: list[list[str]]
    lookups: int = 0

    async def resolve(self, host: str, port: int) -> list[str]:
        answer = self.answers[min(self.lookups, len(self.answers) - 1)]
        self.lookups += 1
        return answer


@dataclass
class FakeSender:
    statuses: list[int]
    sent: list[tuple[WebhookTarget, bytes, dict[str, str]]] = field(default_factory=list)

    async def post(self, target: WebhookTarget, body: bytes, headers: dict[str, str]) -> int:
        self.sent.append((target, body, headers))
        return self.statuses.pop(0)


@dataclass
class FakeQueue:
    pending: list[WebhookDelivery]
    attempts: dict[UUID, list[tuple[bool, int | None, str | None]]] = field(default_factory=dict)
    state: dict[UUID, str] = field(default_factory=dict)
    retry_at: dict[UUID, datetime | None] = field(default_factory=dict)

    async def lease_due(self, limit: int, lease_seconds: float) -> list[WebhookDelivery]:
        due = [d for d in self.pending if self.state.get(d.id, "pending") == "pending"]
        return [
            WebhookDelivery(
                id=d.id,
                webhook_id=d.webhook_id,
                url=d.url,
                secret=d.secret,
                event=d.event,
                payload=d.payload,
                status="pending",
                attempt_count=len(self.attempts.get(d.id, [])),
            )
            for d in due[:limit]
        ]

    async def record_attempt(
        self,
        delivery_id: UUID,
        *,
        succeeded: bool,
        http_status: int | None,
        error: str | None,
        give_up: bool,
        retry_at: datetime | None,
    ) -> int:
        self.attempts.setdefault(delivery_id, []).append((succeeded, http_status, error))
        if succeeded:
            self.state[delivery_id] = "delivered"
        elif give_up:
            self.state[delivery_id] = "failed"
        self.retry_at[delivery_id] = retry_at
        return len(self.attempts[delivery_id])


POLICY = WebhookPolicy(
    allowlist=("hooks.internal",),
    max_attempts=3,
    backoff_base_seconds=1.0,
    backoff_max_seconds=10.0,
    timeout_seconds=1.0,
)
RESOLVER = FakeResolver(
    {
        "example.org": ["93.184.215.14"],
        "sneaky.example": ["93.184.215.14", "10.1.2.3"],
        "hooks.internal": ["10.0.0.5"],
    }
)


def _delivery(
    url: str = "https://example.org/hook", secret: str | None = "secret"
) -> WebhookDelivery:
    return WebhookDelivery(
        id=uuid4(),
        webhook_id=uuid4(),
        url=url,
        secret=secret,
        event="assessment.completed",
        payload={"event": "assessment.completed"},
        status="pending",
    )


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
        resolver = RebindingResolver([["93.184.215.14", "2606:4700::6810:85e5"], ["127.0.0.1"]])

        target = await resolve_target(
            "https://Example.org:8443/h?x=1", resolver=resolver, allowlist=()
        )

        assert target.addresses == ("93.184.215.14", "2606:4700::6810:85e5")
        assert (target.url.host, target.url.port, target.url.target) == (
            "example.org",
            8443,
            "/h?x=1",
        )
        assert resolver.lookups == 1

    async def test_an_allowlisted_host_is_pinned_to_its_internal_address(self) -> None:
        target = await resolve_target(
            "http://hooks.internal/x", resolver=RESOLVER, allowlist=POLICY.allowlist
        )

        assert target.addresses == ("10.0.0.5",)


class TestDeliverDue:
    async def test_success_is_signed_and_recorded(self) -> None:
        delivery = _delivery()
        queue, sender = FakeQueue([delivery]), FakeSender([204])

        await deliver_due(queue, sender, RESOLVER, POLICY)

        assert queue.state[delivery.id] == "delivered"
        target, body, headers = sender.sent[0]
        assert verify_signature("secret", headers[SIGNATURE_HEADER], body)
        assert target.addresses == ("93.184.215.14",)
        assert target.url.host_header == "example.org"

    async def test_failures_are_retried_with_backoff_then_given_up(self) -> None:
        delivery = _delivery()
        queue, sender = FakeQueue([delivery]), FakeSender([500, 502, 503])

        for _ in range(3):
            await deliver_due(queue, sender, RESOLVER, POLICY)

        assert [a[1] for a in queue.attempts[delivery.id]] == [500, 502, 503]
        assert queue.state[delivery.id] == "failed"
        assert queue.retry_at[delivery.id] is None

    async def test_a_target_that_now_resolves_inside_is_refused_at_delivery(self) -> None:
        delivery = _delivery("https://sneaky.example/hook")
        queue, sender = FakeQueue([delivery]), FakeSender([200])

        await deliver_due(queue, sender, RESOLVER, POLICY)

        assert sender.sent == []
        [(succeeded, status, error)] = queue.attempts[delivery.id]
        assert not succeeded
        assert status is None
        assert error is not None
        assert error.startswith("refused")

    async def test_a_name_rebound_to_loopback_after_registration_is_never_sent_to(self) -> None:
        delivery = _delivery("https://rebind.example/hook")
        resolver = RebindingResolver([["93.184.215.14"], ["127.0.0.1"]])
        queue, sender = FakeQueue([delivery]), FakeSender([200])
        await check_target(delivery.url, resolver=resolver, allowlist=())  # registration

        await deliver_due(queue, sender, resolver, POLICY)

        assert sender.sent == []
        [(succeeded, status, error)] = queue.attempts[delivery.id]
        assert (succeeded, status) == (False, None)
        assert error == "refused: the webhook URL resolves to a refused address (loopback)"

    async def test_the_sender_gets_the_answer_that_was_checked_and_nothing_resolves_again(
        self,
    ) -> None:
        delivery = _delivery("https://rebind.example/hook")
        resolver = RebindingResolver([["93.184.215.14"], ["127.0.0.1"]])
        queue, sender = FakeQueue([delivery]), FakeSender([200])

        await deliver_due(queue, sender, resolver, POLICY)

        [(target, _, _)] = sender.sent
        assert target.addresses == ("93.184.215.14",)
        assert resolver.lookups == 1
        assert queue.state[delivery.id] == "delivered"

    async def test_a_secret_that_does_not_decrypt_is_refused_without_sending(self) -> None:
        delivery = _delivery(secret=None)
        queue, sender = FakeQueue([delivery]), FakeSender([200])

        await deliver_due(queue, sender, RESOLVER, POLICY)

        assert sender.sent == []
        [(succeeded, _, error)] = queue.attempts[delivery.id]
        assert not succeeded
        assert error == f"refused: {NOT_DECRYPTABLE}"
