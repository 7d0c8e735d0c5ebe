"""Course reference material: the passages the definitions name, kept in the search index."""

from __future__ import annotations

import structlog

from submission_service.application.ports import DefinitionCatalog, ReferenceStore

log = structlog.get_logger(__name__)


async def load_reference_material(store: ReferenceStore, catalog: DefinitionCatalog) -> int:
    """Make the indexed passages of every shipped definition exactly those of its content
    file; returns how many passages there are."""
    count = 0
    for definition in catalog.all():
        await store.replace_passages(definition.id, list(definition.reference_passages))
        count += len(definition.reference_passages)
    log.info("reference_material_loaded", definitions=len(catalog.all()), passages=count)
    return count
