"""The operators' erasure API: erase one batch's essay texts (scope `cj:erase`)."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint
from quart_dishka import inject
from quart_schema import tag_blueprint, validate_response

from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.entrypoints.http_batches import parse_batch_id
from cj_assessment_service.entrypoints.http_schemas import ErasedOut, ErasureOut
from common_core.runtime.http import errors
from common_core.runtime.http_auth import authenticated, token_subject

ERASURES_PREFIX = "/api/v1/erasures/"
erasures = Blueprint("erasures", __name__)
tag_blueprint(erasures, ["erasures"])


@erasures.post(f"{ERASURES_PREFIX}batches/<batch_id>")
@validate_response(ErasureOut)
@errors(400, 404, 503)
@authenticated
@inject
async def erase_batch(
    batch_id: str,
    transactions: FromDishka[Transactions],
    workflow: FromDishka[CJWorkflow],
) -> ErasureOut:
    """Erase a batch's essay texts from the CJ database: its essays, the comparison requests in
    the outbox and the essay set it was read from. A live batch is cancelled first. Idempotent;
    every request leaves an audit record (no text) naming the token's subject.

    Scope: `cj:erase`."""
    async with transactions() as uow:
        report = await workflow.erase(uow, parse_batch_id(batch_id), requested_by=token_subject())
    return ErasureOut(
        batch_id=report.batch_id,
        erased=ErasedOut(**report.erased),
        already_erased=report.already_erased,
        audit_id=report.audit_id,
    )
