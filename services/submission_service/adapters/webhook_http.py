"""DNS resolution and HTTP delivery for webhooks."""

from __future__ import annotations

import asyncio
import socket
import ssl

import httpx

from common_core.runtime.tracing import trace_headers
from submission_service.domain.webhooks import WebhookTarget


class SystemResolver:
    """Resolves through the operating system's resolver (getaddrinfo)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every distinct address of the host, in the resolver's order of preference."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class HttpxWebhookSender:
    """POSTs with httpx to a target's checked addresses only.

    The URL's host is replaced by a resolved address, so httpx never resolves a name; the
    original name goes in the Host header and, for https, is the TLS server name (SNI and the
    certificate's host name check), via httpcore's `sni_hostname` request extension. Redirects
    are not followed (a redirect could point inside the network), environment proxies are not
    used, and no connection is kept alive: each attempt opens a connection of its own, so a
    connection verified for one host never carries another host's request. With tracing on,
    the request carries the current trace context (`traceparent`), so a receiver that traces
    can continue the delivery's trace.
    """

    def __init__(self, *, timeout_seconds: float, verify: ssl.SSLContext | bool = True) -> None:
        self._timeout = timeout_seconds
        self._client = httpx.AsyncClient(
            timeout=timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            verify=verify,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def post(self, target: WebhookTarget, body: bytes, headers: dict[str, str]) -> int:
        """The response status code (the body is not read); the next address on connect errors."""
        url = target.url
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        unreachable: httpx.ConnectError | None = None
        for address in target.addresses:
            try:
                async with (
                    asyncio.timeout(self._timeout),
                    self._client.stream(
                        "POST",
                        url.at(address),
                        content=body,
                        headers={**headers, **trace_headers(), "Host": url.host_header},
                        extensions=extensions,
                    ) as response,
                ):
                    return response.status_code
            except httpx.ConnectError as exc:
                # Nothing was sent: the next checked address may answer.
                unreachable = exc
        if unreachable is None:
            raise ValueError("the webhook target has no address")
        raise unreachable

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
