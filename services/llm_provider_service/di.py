"""Dishka wiring: one container per process; everything here lives for the app's lifetime.

The entrypoints take what they need from it (`entrypoints/runtime.py` builds the request worker
from the settings, the answerer and the producer); nothing here imports an entrypoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dishka import AsyncContainer, Provider, Scope, from_context, make_async_container, provide

from common_core.events.llm import LLMProviderName
from common_core.runtime.providers import ProducerProvider
from llm_provider_service.adapters.anthropic_chat import AnthropicChatModel, make_anthropic_client
from llm_provider_service.adapters.openai_chat import OpenAIChatModel, make_openai_client
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.panel import JudgePanel, build_panel
from llm_provider_service.application.ports import ChatModel
from llm_provider_service.config import SERVICE_NAME, Settings


class LLMProviderServiceProvider(Provider):
    """APP-scope objects: settings, the SDK clients, the judges, the answerer."""

    scope = Scope.APP

    settings = from_context(provides=Settings, scope=Scope.APP)

    @provide
    async def panel(self, settings: Settings) -> AsyncIterator[JudgePanel]:
        """The judges: the heuristic always, OpenAI/Anthropic when their keys are set."""
        chat_models: dict[LLMProviderName, ChatModel] = {}
        closers = []
        timeout = settings.llm_request_timeout_seconds
        if settings.openai_api_key is not None:
            openai_client = make_openai_client(
                api_key=settings.openai_api_key.get_secret_value(),
                base_url=settings.openai_base_url,
                timeout_seconds=timeout,
            )
            closers.append(openai_client.close)
            chat_models[LLMProviderName.OPENAI] = OpenAIChatModel(openai_client)
        if settings.anthropic_api_key is not None:
            anthropic_client = make_anthropic_client(
                api_key=settings.anthropic_api_key.get_secret_value(),
                base_url=settings.anthropic_base_url,
                timeout_seconds=timeout,
            )
            closers.append(anthropic_client.close)
            chat_models[LLMProviderName.ANTHROPIC] = AnthropicChatModel(anthropic_client)
        try:
            yield build_panel(settings, chat_models)
        finally:
            for close in closers:
                await close()

    @provide
    def answerer(self, settings: Settings, panel: JudgePanel) -> RequestAnswerer:
        """Requests in, result payloads out."""
        return RequestAnswerer(settings, panel.judges)


def make_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    """The service's container: the Kafka producer (common_core's `ProducerProvider`) and the
    service's own bindings; nothing connects until a dependency is first asked for.

    `overrides` replace bindings of the service's provider (a test's own panel, say)."""
    return make_async_container(
        ProducerProvider(settings, SERVICE_NAME),
        LLMProviderServiceProvider(),
        *overrides,
        context={Settings: settings},
    )
