"""DNS resolution and HTTP delivery for webhooks."""

from __future__ import annotations

import asyncio
import socket

import httpx


class SystemResolver:
    """Resolves through the operating system's resolver (getaddrinfo)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every distinct address of the host."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return sorted({str(info[4][0]) for info in infos})


class HttpxWebhookSender:
    """POSTs with httpx; never follows redirects (a redirect could point inside the network)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """The response status code."""
        response = await self._client.post(url, content=body, headers=headers)
        return response.status_code
