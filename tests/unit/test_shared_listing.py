"""Label selectors matched locally, and one LIST per namespace shared by every policy there."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surge.metrics.label_index import LabelIndex
from surge.metrics.selector import SelectorError, parse_selector
from surge.metrics.shared import SharedLister


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("app=web", {"app": "web", "pod-template-hash": "x"}, True),
        ("app=web", {"app": "api"}, False),
        ("app==web,tier!=db", {"app": "web", "tier": "front"}, True),
        ("app==web,tier!=db", {"app": "web", "tier": "db"}, False),
        ("tier in (front, back),app", {"app": "x", "tier": "back"}, True),
        ("tier in (front,back)", {"tier": "db"}, False),
        ("tier notin (db),!legacy", {"tier": "front"}, True),
        ("tier notin (db),!legacy", {"tier": "front", "legacy": "1"}, False),
        ("app.kubernetes.io/name=arena", {"app.kubernetes.io/name": "arena"}, True),
        ("", {"anything": "goes"}, True),
    ],
)
def test_selectors_match_like_kubernetes(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_selector(selector)(labels) is matches


def test_unparseable_selector_is_an_error() -> None:
    with pytest.raises(SelectorError, match="cannot parse"):
        parse_selector("app=web,tier in (")


def test_callers_share_a_fresh_listing_and_refetch_when_it_is_too_old() -> None:
    now = [0.0]
    calls: list[str] = []

    async def fetch(namespace: str) -> list[str]:
        calls.append(namespace)
        await asyncio.sleep(0)
        return [f"{namespace}-{len(calls)}"]

    async def scenario() -> None:
        lister = SharedLister(fetch, clock=lambda: now[0])
        # Ten policies ticking at once: one request.
        results = await asyncio.gather(*(lister.get("games", max_age=5) for _ in range(10)))
        assert calls == ["games"]
        assert all(r == ["games-1"] for r in results)
        now[0] = 4.0
        assert await lister.get("games", max_age=5) == ["games-1"]  # still fresh enough
        assert await lister.get("games", max_age=2) == ["games-2"]  # this caller wants newer data
        assert await lister.get("lobby", max_age=5) == ["lobby-3"]  # namespaces are separate

    asyncio.run(scenario())


def test_a_failed_listing_reaches_every_waiter_and_is_not_cached() -> None:
    attempts = [0]

    async def fetch(namespace: str) -> int:
        attempts[0] += 1
        await asyncio.sleep(0)
        if attempts[0] == 1:
            raise RuntimeError("API down")
        return attempts[0]

    async def scenario() -> None:
        lister = SharedLister(fetch, clock=lambda: 0.0)
        results = await asyncio.gather(*(lister.get("ns", 5) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        assert await lister.get("ns", 5) == 2

    asyncio.run(scenario())


def test_a_stale_listing_is_served_while_a_fresh_one_is_fetched_in_the_background() -> None:
    now = [0.0]
    release = asyncio.Event()
    calls: list[float] = []

    async def fetch(namespace: str) -> str:
        calls.append(now[0])
        if len(calls) > 1:
            await release.wait()  # the refresh is slow: callers must not wait for it
        return f"v{len(calls)}"

    async def scenario() -> None:
        lister = SharedLister(fetch, clock=lambda: now[0])
        assert await lister.get("ns", max_age=5, stale_ok=5) == "v1"
        now[0] = 7.0  # past max_age, within the stale allowance
        assert await asyncio.wait_for(lister.get("ns", max_age=5, stale_ok=5), timeout=1) == "v1"
        assert await asyncio.wait_for(lister.get("ns", max_age=5, stale_ok=5), timeout=1) == "v1"
        await asyncio.sleep(0)
        assert calls == [0.0, 7.0]  # one background refresh, not one per caller
        release.set()
        await asyncio.sleep(0.01)
        assert await lister.get("ns", max_age=5, stale_ok=5) == "v2"  # fresh again, no new request
        assert calls == [0.0, 7.0]

    asyncio.run(scenario())


def test_past_the_stale_allowance_callers_wait_for_a_fresh_listing() -> None:
    now = [0.0]
    calls: list[float] = []

    async def fetch(namespace: str) -> str:
        calls.append(now[0])
        await asyncio.sleep(0)
        return f"v{len(calls)}"

    async def scenario() -> None:
        lister = SharedLister(fetch, clock=lambda: now[0])
        assert await lister.get("ns", max_age=5, stale_ok=5) == "v1"
        now[0] = 10.5
        assert await lister.get("ns", max_age=5, stale_ok=5) == "v2"
        now[0] = 16.0  # 5.5 s old: without a stale allowance it is fetched in the foreground
        assert await lister.get("ns", max_age=5) == "v3"

    asyncio.run(scenario())


def test_a_failed_background_refresh_surfaces_once_the_listing_is_too_old() -> None:
    now = [0.0]
    attempts = [0]

    async def fetch(namespace: str) -> str:
        attempts[0] += 1
        await asyncio.sleep(0)
        if attempts[0] > 1:
            raise RuntimeError("API down")
        return "v1"

    async def scenario() -> None:
        lister = SharedLister(fetch, clock=lambda: now[0])
        await lister.get("ns", max_age=5, stale_ok=5)
        now[0] = 6.0
        assert await lister.get("ns", max_age=5, stale_ok=5) == "v1"  # refresh fails quietly
        await asyncio.sleep(0.01)
        now[0] = 11.0
        with pytest.raises(RuntimeError, match="API down"):
            await lister.get("ns", max_age=5, stale_ok=5)

    asyncio.run(scenario())


def test_a_cancelled_caller_never_cancels_the_listing_the_others_wait_for() -> None:
    release = asyncio.Event()
    calls: list[str] = []

    async def fetch(namespace: str) -> str:
        calls.append(namespace)
        await release.wait()
        return "pods"

    async def scenario() -> None:
        lister = SharedLister(fetch, clock=lambda: 0.0)
        first = asyncio.create_task(lister.get("ns", 5))  # this policy's task started the LIST
        await asyncio.sleep(0)
        others = [asyncio.create_task(lister.get("ns", 5)) for _ in range(3)]
        await asyncio.sleep(0)
        first.cancel()  # kopf cancels the first policy's daemon (policy deleted)
        await asyncio.sleep(0)
        release.set()
        assert await asyncio.gather(*others) == ["pods"] * 3
        with pytest.raises(asyncio.CancelledError):
            await first
        assert calls == ["ns"]  # one LIST, finished for the others

    asyncio.run(scenario())


def test_every_caller_cancelled_still_finishes_and_caches_the_listing() -> None:
    release = asyncio.Event()
    calls: list[str] = []

    async def fetch(namespace: str) -> str:
        calls.append(namespace)
        await release.wait()
        return "pods"

    async def scenario() -> None:
        lister = SharedLister(fetch, clock=lambda: 0.0)
        only = asyncio.create_task(lister.get("ns", 5))
        await asyncio.sleep(0)
        only.cancel()
        await asyncio.sleep(0)
        release.set()
        await asyncio.sleep(0.01)
        assert await lister.get("ns", 5) == "pods"
        assert calls == ["ns"]  # the next caller used the listing the cancelled one started

    asyncio.run(scenario())


# --- the label index: a lookup must select exactly what a scan would -------------------------------------

_KEYS = ["app", "tier", "zone"]
_VALUES = ["a", "b", "c"]
_label_maps = st.dictionaries(st.sampled_from(_KEYS), st.sampled_from(_VALUES), max_size=3)
_requirements = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(_KEYS), st.sampled_from(_VALUES)),
    st.builds(lambda k, v: f"{k}=={v}", st.sampled_from(_KEYS), st.sampled_from(_VALUES)),
    st.builds(lambda k, v: f"{k}!={v}", st.sampled_from(_KEYS), st.sampled_from(_VALUES)),
    st.builds(
        lambda k, vs: f"{k} in ({','.join(vs)})",
        st.sampled_from(_KEYS),
        st.lists(st.sampled_from(_VALUES), min_size=1, max_size=3),
    ),
    st.builds(lambda k, v: f"{k} notin ({v})", st.sampled_from(_KEYS), st.sampled_from(_VALUES)),
    st.builds(lambda neg, k: f"{neg}{k}", st.sampled_from(["", "!"]), st.sampled_from(_KEYS)),
)


@given(
    items=st.lists(_label_maps, max_size=30),
    selector=st.lists(_requirements, max_size=3).map(",".join),
)
def test_index_selects_exactly_what_a_scan_matches(items: list[dict[str, str]], selector: str) -> None:
    rows = list(enumerate(items))
    index = LabelIndex(rows, lambda row: row[1])
    parsed = parse_selector(selector)
    assert index.select(parsed) == [row for row in rows if parsed.matches(row[1])]


def test_pinned_labels_are_the_equality_terms() -> None:
    parsed = parse_selector("app=web,tier in (front),zone in (a,b),!canary,env!=dev")
    assert parsed.equalities == (("app", "web"), ("tier", "front"))
    assert parse_selector("app=web") is parse_selector("app=web")  # parsed once, reused every tick


def test_index_lookup_does_not_scan_unrelated_items() -> None:
    seen: list[int] = []

    def labels_of(row: tuple[int, dict[str, str]]) -> dict[str, str]:
        seen.append(row[0])
        return row[1]

    rows = [(i, {"app": f"fleet-{i}"}) for i in range(1000)]
    index = LabelIndex(rows, labels_of)
    seen.clear()
    assert index.select(parse_selector("app=fleet-7")) == [rows[7]]
    assert seen == [7]  # one candidate checked, not a thousand
