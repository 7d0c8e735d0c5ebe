"""A webhook receiver on 127.0.0.1 for integration tests: what it got and how it answered."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, request

from common_core.testing import eventually
from devstack import free_port


@dataclass
class Receiver:
    """Every request the receiver got (lower-cased headers, body), the TLS server names asked,
    and how many times `/elsewhere` redirected."""

    port: int
    replies: Sequence[int] = (204,)
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    redirects: int = 0

    @property
    def url(self) -> str:
        """The hook's URL under the name `localhost`."""
        return f"http://localhost:{self.port}/hook"

    def next_reply(self) -> int:
        """The status for the next call: the scripted replies in order, the last repeating."""
        return self.replies[min(len(self.calls), len(self.replies) - 1)]


class _RecordingTlsConfig(Config):
    def __init__(self, receiver: Receiver) -> None:
        super().__init__()
        self._receiver = receiver

    def create_ssl_context(self) -> ssl.SSLContext | None:
        context = super().create_ssl_context()
        if context is not None:

            def record(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
                self._receiver.server_names.append(name)

            context.sni_callback = record
        return context


@contextlib.asynccontextmanager
async def receiving(
    workdir: Path,
    certificate: trustme.LeafCert | None = None,
    *,
    replies: Sequence[int] = (204,),
) -> AsyncIterator[Receiver]:
    """Serve a recording receiver (https when given a certificate) until the block ends; `/hook`
    answers with `replies` in order (the last repeats), `/elsewhere` redirects to `/hook`."""
    receiver = Receiver(port=free_port(), replies=replies)
    app = Quart("receiver")

    @app.post("/hook")
    async def hook() -> tuple[str, int]:
        raw = await request.get_data()
        body = raw if isinstance(raw, bytes) else raw.encode()
        status = receiver.next_reply()
        receiver.calls.append(({k.lower(): v for k, v in request.headers.items()}, body))
        return "", status

    @app.post("/elsewhere")
    async def elsewhere() -> tuple[str, int, dict[str, str]]:
        receiver.redirects += 1
        return "", 307, {"Location": f"http://127.0.0.1:{receiver.port}/hook"}

    config = _RecordingTlsConfig(receiver)
    config.bind = [f"127.0.0.1:{receiver.port}"]
    config.accesslog = None
    if certificate is not None:
        certfile, keyfile = workdir / f"{receiver.port}.pem", workdir / f"{receiver.port}.key"
        certificate.cert_chain_pems[0].write_to_path(str(certfile))
        certificate.private_key_pem.write_to_path(str(keyfile))
        config.certfile, config.keyfile = str(certfile), str(keyfile)
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        await eventually(
            lambda: _accepts(receiver.port), what=f"receiver listening on {receiver.port}"
        )
        yield receiver
    finally:
        stop.set()
        await server


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True
