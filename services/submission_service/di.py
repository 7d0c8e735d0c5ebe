"""Dishka providers, all at APP scope: connections, clients and the units of work's factory.

Engine, sessions and the Kafka producer come from common_core's shared providers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import structlog
from dishka import (
    AnyOf,
    AsyncContainer,
    Provider,
    Scope,
    from_context,
    make_async_container,
    provide,
)
from quart_dishka import QuartProvider
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_core.runtime.http_auth import ClaimRules, TokenVerifier, key_sets
from common_core.runtime.providers import DatabaseProvider, ProducerProvider
from common_core.runtime.unit_of_work import SessionTransactions
from common_core.topics import Topic
from submission_service.adapters.content import FileDefinitionCatalog
from submission_service.adapters.identity import JwtIdentityReader
from submission_service.adapters.postgres import PostgresUnitOfWork
from submission_service.adapters.webhook_http import HttpxWebhookSender, SystemResolver
from submission_service.adapters.webhook_secrets import WebhookSecretBox
from submission_service.application.data_lifecycle import LifecycleTransactions
from submission_service.application.ports import (
    DefinitionCatalog,
    HostResolver,
    QuestionCatalog,
    Transactions,
    WebhookSender,
)
from submission_service.application.scoring import RubricPolicy
from submission_service.application.webhooks import WebhookPolicy
from submission_service.config import SERVICE_NAME, Settings

log = structlog.get_logger(__name__)


class SubmissionProvider(Provider):
    """Everything the submission service's handlers and workers depend on."""

    settings = from_context(provides=Settings, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def catalog(
        self, settings: Settings
    ) -> AnyOf[FileDefinitionCatalog, DefinitionCatalog, QuestionCatalog]:
        """The assessment definitions shipped in CONTENT_DIR."""
        return FileDefinitionCatalog.load(settings.content_dir)

    @provide(scope=Scope.APP)
    def identity_reader(self, settings: Settings) -> JwtIdentityReader:
        """JWT / anonymous-token identity reader: JWT_SECRET (HS256) and, when set, the
        AUTH_JWKS_URL / AUTH_JWKS_FILE key set (RS256/ES256), with JWT_ISSUER and JWT_AUDIENCE."""
        key_set, key_client = key_sets(settings)
        rules = ClaimRules(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_seconds=settings.jwt_leeway_seconds,
            required=("exp", "iss", "aud", "sub"),
        )
        return JwtIdentityReader(
            TokenVerifier(
                rules,
                secret=settings.jwt_secret.get_secret_value(),
                key_set=key_set,
                key_client=key_client,
            )
        )

    @provide(scope=Scope.APP)
    def rubric_policy(self, settings: Settings) -> RubricPolicy:
        """Where rubric results come back and which model (None = the LLM service decides)."""
        return RubricPolicy(
            callback_topic=settings.topic(Topic.LLM_RUBRIC_RESULT),
            topic_prefix=settings.topic_prefix,
            provider=settings.rubric_llm_provider,
            model=settings.rubric_llm_model,
            temperature=settings.rubric_llm_temperature,
            language=settings.rubric_prompt_language,
            rag_passages=settings.rag_top_passages,
        )

    @provide(scope=Scope.APP)
    def webhook_policy(self, settings: Settings) -> WebhookPolicy:
        """Webhook allowlist and retry policy."""
        return WebhookPolicy(
            allowlist=tuple(settings.webhook_allowlist),
            max_attempts=settings.webhook_max_attempts,
            backoff_base_seconds=settings.webhook_backoff_base_seconds,
            backoff_max_seconds=settings.webhook_backoff_max_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
        )

    resolver = provide(SystemResolver, scope=Scope.APP, provides=HostResolver)

    @provide(scope=Scope.APP)
    async def sender(self, settings: Settings) -> AsyncIterator[WebhookSender]:
        """Webhook sender over httpx (pinned addresses, no redirects)."""
        sender = HttpxWebhookSender(timeout_seconds=settings.webhook_timeout_seconds)
        yield sender
        await sender.aclose()

    @provide(scope=Scope.APP)
    def secret_box(self, settings: Settings) -> WebhookSecretBox:
        """Encryption of stored webhook secrets with the keys of WEBHOOK_SECRET_KEYS."""
        box = WebhookSecretBox(settings.webhook_secret_key_ring())
        if settings.uses_dev_webhook_secret_key:
            log.warning(
                "insecure_dev_webhook_secret_key",
                message="webhook secrets use the development key; set WEBHOOK_SECRET_KEYS",
            )
        return box

    @provide(scope=Scope.APP)
    def transactions(
        self, sessions: async_sessionmaker[AsyncSession], secret_box: WebhookSecretBox
    ) -> AnyOf[Transactions, LifecycleTransactions]:
        """Units of work over the service's sessions: entrypoints open one per request, message
        batch or dispatcher step (`async with transactions() as uow:`) and it commits."""
        return SessionTransactions(sessions, partial(PostgresUnitOfWork, secret_box=secret_box))


def make_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    """The service's container: engine and sessions, the Kafka producer, the service's own
    bindings and Quart's request objects.

    `overrides` replace bindings of the service's provider (tests: a DNS resolver stand-in)."""
    return make_async_container(
        DatabaseProvider(settings),
        ProducerProvider(settings, SERVICE_NAME),
        SubmissionProvider(),
        QuartProvider(),
        *overrides,
        context={Settings: settings},
    )
