"""Webhook rules: which addresses may be called, how payloads are signed, when to retry."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

SIGNATURE_HEADER = "X-HuleEdu-Signature"

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
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
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
