"""Dishka wiring: one container per process; everything here lives for the app's lifetime.

The entrypoints take what they need from it (`entrypoints/runtime.py` builds the request consumer
from the settings, the answerer and the producer); nothing here imports an entrypoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dishka import AsyncContainer, Provider, Scope, from_context, make_async_container, provide
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_core.events.llm import LLMProviderName
from common_core.runtime.providers import DatabaseProvider, ProducerProvider
from common_core.runtime.unit_of_work import SessionTransactions
from llm_provider_service.adapters.postgres import PostgresUnitOfWork
from llm_provider_service.adapters.postgres_quota import PostgresRateBudget
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.batch_results import BatchCallbacks
from llm_provider_service.application.batching import BatchIntake, BatchPoller, BatchSubmitter
from llm_provider_service.application.panel import JudgePanel, build_panel
from llm_provider_service.application.ports import BatchAPI, ChatModel, RateBudget, Transactions
from llm_provider_service.config import SERVICE_NAME, ProviderLimits, Settings

if TYPE_CHECKING:
    import anthropic
    import openai

# The provider SDKs are imported where a provider's key is set, not with this module: `anthropic`
# alone costs about 5 s of CPU to import and `openai` 2.5 s, paid by every process start (the
# offline judge needs neither).


@dataclass(frozen=True, slots=True)
class ProviderClients:
    """The SDK clients of the providers whose keys are set."""

    openai: openai.AsyncOpenAI | None
    anthropic: anthropic.AsyncAnthropic | None


class BatchAPIs(dict[LLMProviderName, BatchAPI]):
    """The batch APIs by provider (the providers whose keys are set)."""


class LLMProviderServiceProvider(Provider):
    """APP-scope objects: settings, the SDK clients, the judges, the answerer, batch mode."""

    scope = Scope.APP

    settings = from_context(provides=Settings, scope=Scope.APP)

    @provide
    async def clients(self, settings: Settings) -> AsyncIterator[ProviderClients]:
        """One SDK client per provider with a key, closed with the container."""
        timeout = settings.llm_request_timeout_seconds
        openai_client = anthropic_client = None
        if settings.openai_api_key is not None:
            from llm_provider_service.adapters.openai_chat import make_openai_client

            openai_client = make_openai_client(
                api_key=settings.openai_api_key.get_secret_value(),
                base_url=settings.openai_base_url,
                timeout_seconds=timeout,
            )
        if settings.anthropic_api_key is not None:
            from llm_provider_service.adapters.anthropic_chat import make_anthropic_client

            anthropic_client = make_anthropic_client(
                api_key=settings.anthropic_api_key.get_secret_value(),
                base_url=settings.anthropic_base_url,
                timeout_seconds=timeout,
            )
        try:
            yield ProviderClients(openai_client, anthropic_client)
        finally:
            if openai_client is not None:
                await openai_client.close()
            if anthropic_client is not None:
                await anthropic_client.close()

    @provide
    def panel(
        self,
        settings: Settings,
        clients: ProviderClients,
        sessions: async_sessionmaker[AsyncSession],
    ) -> JudgePanel:
        """The judges: the heuristic always, OpenAI/Anthropic when their keys are set; their
        rate budgets shared by every instance through the database unless set to `local`."""
        chat_models: dict[LLMProviderName, ChatModel] = {}
        if clients.openai is not None:
            from llm_provider_service.adapters.openai_chat import OpenAIChatModel

            chat_models[LLMProviderName.OPENAI] = OpenAIChatModel(clients.openai)
        if clients.anthropic is not None:
            from llm_provider_service.adapters.anthropic_chat import AnthropicChatModel

            chat_models[LLMProviderName.ANTHROPIC] = AnthropicChatModel(clients.anthropic)

        def shared(name: LLMProviderName, limits: ProviderLimits, own: RateBudget) -> RateBudget:
            return PostgresRateBudget(
                sessions,
                name.value,
                requests=limits.requests_per_minute,
                tokens=limits.tokens_per_minute,
                period_seconds=settings.llm_rate_limit_period_seconds,
                fallback=own,
            )

        if settings.llm_rate_limit_scope == "shared":
            return build_panel(settings, chat_models, shared_budget=shared)
        return build_panel(settings, chat_models)

    @provide
    def answerer(self, settings: Settings, panel: JudgePanel) -> RequestAnswerer:
        """Requests in, result payloads out."""
        return RequestAnswerer(settings, panel.judges)

    @provide
    def batch_apis(self, clients: ProviderClients) -> BatchAPIs:
        """The providers' batch APIs, over the same SDK clients."""
        apis = BatchAPIs()
        if clients.openai is not None:
            from llm_provider_service.adapters.openai_batch import OpenAIBatchAPI

            apis[LLMProviderName.OPENAI] = OpenAIBatchAPI(clients.openai)
        if clients.anthropic is not None:
            from llm_provider_service.adapters.anthropic_batch import AnthropicBatchAPI

            apis[LLMProviderName.ANTHROPIC] = AnthropicBatchAPI(clients.anthropic)
        return apis

    @provide
    def transactions(self, sessions: async_sessionmaker[AsyncSession]) -> Transactions:
        """Units of work on the service's database."""
        return SessionTransactions(sessions, PostgresUnitOfWork)

    @provide
    def batch_callbacks(self, settings: Settings) -> BatchCallbacks:
        """Callbacks of batch-mode requests."""
        return BatchCallbacks(settings)

    @provide
    def batch_intake(
        self, settings: Settings, transactions: Transactions, apis: BatchAPIs
    ) -> BatchIntake:
        """Which requests go through provider batches, and recording them."""
        return BatchIntake(settings, transactions, list(apis))

    @provide
    def batch_submitter(
        self,
        settings: Settings,
        transactions: Transactions,
        apis: BatchAPIs,
        callbacks: BatchCallbacks,
    ) -> BatchSubmitter:
        """Submits due chunks, reconciles lost submissions."""
        return BatchSubmitter(settings, transactions, apis, callbacks)

    @provide
    def batch_poller(
        self,
        settings: Settings,
        transactions: Transactions,
        apis: BatchAPIs,
        callbacks: BatchCallbacks,
    ) -> BatchPoller:
        """Polls submitted provider batches and answers the ended ones."""
        return BatchPoller(settings, transactions, apis, callbacks)


def make_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    """The service's container: engine and sessions (common_core's `DatabaseProvider`), the
    Kafka producer (`ProducerProvider`) and the service's own bindings; nothing connects until a
    dependency is first asked for.

    `overrides` replace bindings of the service's provider (a test's own panel, say)."""
    return make_async_container(
        DatabaseProvider(settings),
        ProducerProvider(settings, SERVICE_NAME),
        LLMProviderServiceProvider(),
        *overrides,
        context={Settings: settings},
    )
