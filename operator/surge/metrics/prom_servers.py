"""Which Prometheus servers the operator may contact: the platform team chooses them, never a tenant."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from surge.metrics.types import MetricUnavailable

NOT_ALLOWED = "PrometheusServerNotAllowed"
SETTING = "--prometheus-allowed-url / SURGE_PROMETHEUS_ALLOWED_URLS"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str) -> str:
    """`scheme://host:port/path` with a lower-case host, the default port spelled out, no trailing slash.

    Raises ValueError for anything that is not a plain http(s) base URL (credentials, a query or a fragment
    would make two spellings of one server compare unequal, or smuggle a request to another path).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("only http:// and https:// URLs are allowed")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not allowed")
    if parts.query or parts.fragment:
        raise ValueError("a base URL has no query or fragment")
    path = parts.path.rstrip("/")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise ValueError("the path may not contain '.' or '..' segments")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}{path}"


class ServerAllowlist:
    """The default URL plus the configured ones; a policy's serverAddress must name one of them."""

    def __init__(self, default_url: str, allowed_urls: Iterable[str] = ()) -> None:
        try:
            self.default = normalize_url(default_url)
        except ValueError as exc:
            raise ValueError(f"invalid Prometheus URL {default_url!r}: {exc}") from None
        allowed = {self.default}
        for url in allowed_urls:
            try:
                allowed.add(normalize_url(url))
            except ValueError as exc:
                raise ValueError(f"invalid entry {url!r} in {SETTING}: {exc}") from None
        self.allowed = frozenset(allowed)

    def resolve(self, server: str | None) -> str:
        """The normalized base URL to send a query to; requests only ever go to an allowed entry."""
        if server is None or not server.strip():
            return self.default
        try:
            normalized = normalize_url(server)
        except ValueError as exc:
            raise MetricUnavailable(
                NOT_ALLOWED, f"serverAddress {_clip(server)!r} is not usable: {exc}; no request was made"
            ) from None
        if normalized not in self.allowed:
            raise MetricUnavailable(
                NOT_ALLOWED,
                f"serverAddress {_clip(server)!r} is not an allowed Prometheus server, so no request was "
                f"made; the operator's administrator can allow it with {SETTING}",
            )
        return normalized


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
