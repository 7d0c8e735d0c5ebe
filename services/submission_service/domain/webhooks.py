"""Webhook rules: which addresses may be called, how payloads are signed, when to retry."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from submission_service.domain.errors import InvalidInputError

SIGNATURE_HEADER = "X-HuleEdu-Signature"
DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?")
# NAT64 (RFC 6052): a gateway translates these to the IPv4 address in the last 32 bits.
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")

# Cloud metadata endpoints that are not covered by the link-local/private checks.
_METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("fd00:ec2::254"),
    }
)


def refusal_reason(address: str) -> str | None:
    """Why a resolved address must not be called, or None when it is a public address."""
    ip = _embedded_ipv4(ipaddress.ip_address(address))
    checks = (
        (ip in _METADATA_ADDRESSES, "metadata"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link_local"),
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "not_global"),
    )
    for refused, reason in checks:
        if refused:
            return reason
    return None


def _embedded_ipv4(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IPv4 address an IPv6 address reaches (mapped, 6to4, NAT64), else the address itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def first_refusal(addresses: Iterable[str]) -> tuple[str, str] | None:
    """The first (address, reason) that is refused among a host's addresses, if any."""
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None:
            return address, reason
    return None


def host_is_allowlisted(host: str, allowlist: Iterable[str]) -> bool:
    """Exact, case-insensitive host match against the configured allowlist."""
    wanted = host.lower().rstrip(".")
    return any(wanted == entry.lower().rstrip(".") for entry in allowlist)


@dataclass(frozen=True, slots=True)
class WebhookUrl:
    """A webhook URL taken apart into what is resolved and what is sent."""

    scheme: str
    host: str  # lower-case ASCII (IDNA) name or IP literal: resolved, sent as Host and TLS name
    port: int
    target: str  # path and query, "/" when the URL has no path

    @property
    def host_header(self) -> str:
        """The Host header: the original host, with the port when it is not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def at(self, address: str) -> str:
        """The URL with its host replaced by one resolved address (what is connected to)."""
        netloc = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{netloc}:{self.port}{self.target}"


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A webhook URL resolved once: a delivery connects to these checked addresses only."""

    url: WebhookUrl
    addresses: tuple[str, ...]


def split_webhook_url(url: str) -> WebhookUrl:
    """Take an absolute http(s) URL apart; InvalidInputError for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(
            "url is not a valid URL", reason="invalid_url", field="url"
        ) from exc
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidInputError(
            "url must be an absolute http(s) URL", reason="invalid_url", field="url"
        )
    if parts.username or parts.password:
        raise InvalidInputError("url must not carry credentials", reason="invalid_url", field="url")
    if port == 0:
        raise InvalidInputError("url has port 0", reason="invalid_url", field="url")
    return WebhookUrl(
        scheme=parts.scheme,
        host=_ascii_host(parts.hostname),
        port=DEFAULT_PORTS[parts.scheme] if port is None else port,
        target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
    )


def _ascii_host(host: str) -> str:
    """An IP literal as given, a name in its ASCII (IDNA) form; only name characters allowed."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    try:
        name = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidInputError(
            "url has an invalid host name", reason="invalid_url", field="url"
        ) from exc
    if len(name) > 254 or not _HOST_NAME.fullmatch(name):
        raise InvalidInputError("url has an invalid host name", reason="invalid_url", field="url")
    return name


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex hmac-sha256 of "<t>.<body>">` for the X-HuleEdu-Signature header."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(secret: str, header: str, body: bytes) -> bool:
    """Check a signature header (what a receiver does); constant-time comparison."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = signature_header(secret, timestamp, body)
    return hmac.compare_digest(expected, header)


def backoff_seconds(attempt: int, *, base: float, maximum: float) -> float:
    """Delay before retry number `attempt` (1-based): exponential, capped."""
    return float(min(maximum, base * 2 ** max(0, attempt - 1)))
