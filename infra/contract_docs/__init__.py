"""The contract documents under docs/contracts/, generated from the code (`make contracts`).

`docs/contracts/asyncapi.yaml` describes every Kafka topic from the `common_core` models;
`docs/contracts/openapi/<service>.json` is what each service's app serves at `/openapi.json`.
Both are rendered with sorted keys, so the same code always gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from contract_docs.asyncapi import build_asyncapi
from contract_docs.openapi import SERVICES, build_openapi

ASYNCAPI_PATH = Path("docs/contracts/asyncapi.yaml")
OPENAPI_DIR = Path("docs/contracts/openapi")
ASYNCAPI_SCHEMA_PATH = Path("docs/contracts/schemas/asyncapi-3.0.0.json")


def render_yaml(document: dict[str, Any]) -> str:
    """A document as YAML with sorted keys."""
    return yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=100)


def render_json(document: dict[str, Any]) -> str:
    """A document as indented JSON with sorted keys and a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated_documents() -> dict[Path, str]:
    """Every contract document, by its path relative to the repository root."""
    documents = {ASYNCAPI_PATH: render_yaml(build_asyncapi())}
    for service in SERVICES:
        documents[OPENAPI_DIR / f"{service}.json"] = render_json(build_openapi(service))
    return documents


__all__ = [
    "ASYNCAPI_PATH",
    "ASYNCAPI_SCHEMA_PATH",
    "OPENAPI_DIR",
    "SERVICES",
    "build_asyncapi",
    "build_openapi",
    "generated_documents",
    "render_json",
    "render_yaml",
]
