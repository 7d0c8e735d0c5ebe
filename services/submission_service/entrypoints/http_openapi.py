"""What the OpenAPI document says beyond quart-schema's defaults: documented errors, optional
bodies, links, security, and the provider that writes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from quart_schema.typing import Model
from werkzeug.routing import Rule

from common_core.runtime.http import ServiceOpenAPIProvider, http_header_name
from common_core.runtime.http import errors as documented_errors
from submission_service.entrypoints.http_schemas import AuthenticateHeaders

F = TypeVar("F", bound=Callable[..., Any])


# Operations anyone may call; the document's default is a Bearer JWT or an anonymous token.
PUBLIC: list[dict[str, list[str]]] = []


USER_ONLY: list[dict[str, list[str]]] = [{"bearer": []}]


_OPTIONAL_BODY = "_submission_optional_body"


_LINKS = "_submission_links"


def errors(*statuses: int) -> Callable[[F], F]:
    """Document the JSON error body for each status a route can answer with; a 401 carries its
    challenge (WWW-Authenticate)."""
    return documented_errors(*statuses, headers={401: AuthenticateHeaders})


def optional_body(func: F) -> F:
    """Mark a route whose documented request body may be left out."""
    setattr(func, _OPTIONAL_BODY, True)
    return func


def links(status: int, **operations: dict[str, str]) -> Callable[[F], F]:
    """Document OpenAPI links: which operations (by operationId) take ids from this response."""

    def decorator(func: F) -> F:
        setattr(func, _LINKS, {**getattr(func, _LINKS, {}), status: operations})
        return func

    return decorator


class SubmissionOpenAPIProvider(ServiceOpenAPIProvider):
    """The shared provider (response headers, required query parameters), plus what this API
    states beyond it: path ids are UUIDs (routes accept any string so a bad id gets a specific
    400); required headers and bodies are marked required; links between operations."""

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        """Mark request bodies required unless the route says otherwise; add its links."""
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        optional = getattr(func, _OPTIONAL_BODY, False)
        linked: dict[int, dict[str, dict[str, str]]] = getattr(func, _LINKS, {})
        for operations in paths.values():
            for method, operation in operations.items():
                changed = {**operation, "responses": dict(operation["responses"])}
                if "requestBody" in operation:
                    changed["requestBody"] = {**operation["requestBody"], "required": not optional}
                for status, targets in linked.items():
                    changed["responses"][status] = {
                        **changed["responses"][status],
                        "links": {
                            target: {"operationId": target, "parameters": parameters}
                            for target, parameters in targets.items()
                        },
                    }
                operations[method] = changed
        return paths, components

    def build_headers_parameters(
        self, model: type[Model]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Header parameters with their HTTP names, required ones marked."""
        parameters, definitions = super().build_headers_parameters(model)
        required = {name.replace("_", "-") for name in self.required_fields(model)}
        for parameter in parameters:
            parameter["required"] = parameter["name"] in required
            parameter["name"] = http_header_name(parameter["name"])
        return parameters, definitions
