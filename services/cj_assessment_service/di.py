"""Dishka providers: common_core's engine, sessions and producer (APP scope), this service's
settings, workflow and unit-of-work factory (APP scope), and REQUEST-scoped batch reads. Nothing
here imports an entrypoint.

Who commits: the entrypoint, through a unit of work it opens itself (`async with transactions()
as uow:`: an HTTP route that changes something, a consumer handler, a periodic worker). The
request-scoped batch reads never commit: when their scope closes the session is closed and
rolled back, so a failed or cancelled request can never commit half its work."""

from __future__ import annotations

from dishka import AsyncContainer, Provider, Scope, from_context, make_async_container, provide
from quart_dishka import QuartProvider
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cj_assessment_service.adapters.postgres import PostgresUnitOfWork
from cj_assessment_service.application.human_judging import HumanJudgingUseCases
from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import SERVICE_NAME, Settings
from common_core.runtime.compute import ComputePool
from common_core.runtime.providers import ComputeProvider, DatabaseProvider, ProducerProvider
from common_core.runtime.unit_of_work import SessionTransactions


class CJProvider(Provider):
    """What the CJ service's entrypoints need besides the engine, sessions and producer."""

    settings = from_context(provides=Settings, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def workflow(self, settings: Settings, compute: ComputePool) -> CJWorkflow:
        """The batch use cases (their heavy computations on the kernel's pool)."""
        return CJWorkflow(settings, compute=compute)

    @provide(scope=Scope.APP)
    def human_judging(self, settings: Settings) -> HumanJudgingUseCases:
        """The judging page's and the organiser's use cases (links signed with the settings')."""
        return HumanJudgingUseCases(settings)

    @provide(scope=Scope.APP)
    def transactions(self, sessions: async_sessionmaker[AsyncSession]) -> Transactions:
        """Units of work for the entrypoints."""
        return SessionTransactions(sessions, PostgresUnitOfWork)


def make_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    """The service container (nothing connects until a dependency is first asked for);
    `overrides` are providers added last, replacing the bindings they provide."""
    return make_async_container(
        DatabaseProvider(settings),
        # gzip: a completed event of 10,000 rankings is 1.3 MB of JSON, 0.3 MB compressed, and
        # the broker's default limit (1 MB) applies to the compressed batch (docs/limits.md).
        ProducerProvider(settings, SERVICE_NAME, compression_type="gzip"),
        ComputeProvider(settings),
        CJProvider(),
        QuartProvider(),
        *overrides,
        context={Settings: settings},
    )
