"""Dishka wiring: one container per process; everything here lives for the app's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dishka import AsyncContainer, Provider, Scope, make_async_container, provide

from common_core.events.llm import LLMProviderName
from common_core.runtime.kafka_producer import KafkaEventProducer
from llm_provider_service.adapters.anthropic_chat import AnthropicChatModel, make_anthropic_client
from llm_provider_service.adapters.openai_chat import OpenAIChatModel, make_openai_client
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.panel import JudgePanel, build_panel
from llm_provider_service.application.ports import ChatModel
from llm_provider_service.config import SERVICE_NAME, Settings
from llm_provider_service.entrypoints.consumers import RequestWorker


class LLMProviderServiceProvider(Provider):
    """APP-scope objects: settings, the Kafka producer, the SDK clients, the judges, the worker."""

    scope = Scope.APP

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings

    @provide
    def settings(self) -> Settings:
        """The service's settings."""
        return self._settings

    @provide
    async def producer(self, settings: Settings) -> AsyncIterator[KafkaEventProducer]:
        """The idempotent producer callbacks go out through."""
        producer = KafkaEventProducer(
            settings.kafka_bootstrap_servers, client_id=f"{SERVICE_NAME}-producer"
        )
        await producer.start()
        try:
            yield producer
        finally:
            await producer.stop()

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

    @provide
    def worker(
        self, settings: Settings, answerer: RequestAnswerer, producer: KafkaEventProducer
    ) -> RequestWorker:
        """The Kafka consume loop."""
        return RequestWorker(settings, answerer, producer)


def make_container(settings: Settings) -> AsyncContainer:
    """The service's container."""
    return make_async_container(LLMProviderServiceProvider(settings))
