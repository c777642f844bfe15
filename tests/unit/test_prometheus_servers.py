"""Which servers a policy may name: normalized comparison against the platform team's allowlist."""

from __future__ import annotations

import re

import pytest

from surge.metrics.prom_servers import NOT_ALLOWED, ServerAllowlist, normalize_url
from surge.metrics.types import MetricUnavailable


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("http://Prom.Example:9090/", "http://prom.example:9090"),
        ("http://prom.example", "http://prom.example:80"),
        ("HTTPS://prom.example/api/prom//", "https://prom.example:443/api/prom"),
        ("http://[::1]:9090", "http://[::1]:9090"),
        (" http://127.0.0.1:19090 ", "http://127.0.0.1:19090"),
    ],
)
def test_spellings_of_one_server_normalize_alike(url: str, normalized: str) -> None:
    assert normalize_url(url) == normalized


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://prom", "only http"),
        ("http://", "no host"),
        ("http://user:pw@prom", "credentials"),
        ("http://prom/?x=1", "no query"),
        ("http://prom/#top", "no query or fragment"),
        ("http://prom/a/../admin", "'..'"),
        ("http://prom:99999", "not a valid URL"),
    ],
)
def test_what_is_not_a_plain_base_url_is_refused(url: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        normalize_url(url)


def test_default_and_allowed_servers_resolve_to_their_normalized_form() -> None:
    servers = ServerAllowlist("http://127.0.0.1:19090/", ["http://Other:9090"])
    assert servers.resolve(None) == "http://127.0.0.1:19090"
    assert servers.resolve("  ") == "http://127.0.0.1:19090"
    assert servers.resolve("http://127.0.0.1:19090/") == "http://127.0.0.1:19090"
    assert servers.resolve("http://other:9090/") == "http://other:9090"


@pytest.mark.parametrize(
    "server",
    ["http://127.0.0.1:19091", "https://127.0.0.1:19090", "http://127.0.0.1:19090/admin", "http://x@h"],
)
def test_any_other_server_is_refused_naming_the_setting(server: str) -> None:
    servers = ServerAllowlist("http://127.0.0.1:19090")
    with pytest.raises(MetricUnavailable) as info:
        servers.resolve(server)
    assert info.value.reason == NOT_ALLOWED
    assert "no request was made" in info.value.message


def test_refusal_names_the_operator_setting() -> None:
    with pytest.raises(MetricUnavailable) as info:
        ServerAllowlist("http://127.0.0.1:19090").resolve("http://10.0.0.1/")
    assert "--prometheus-allowed-url" in info.value.message
    assert "SURGE_PROMETHEUS_ALLOWED_URLS" in info.value.message


def test_a_bad_allowlist_entry_fails_at_start_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="SURGE_PROMETHEUS_ALLOWED_URLS"):
        ServerAllowlist("http://127.0.0.1:19090", ["file:///etc/passwd"])
