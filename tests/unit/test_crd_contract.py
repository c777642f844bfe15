"""The parser agrees with the CRD: every case of the CRD validation table gets the same verdict.

tests/integration/crd_cases.yaml is the table the CRD is tested with against a real API server; here
the same cases run through ``parse_policy_spec`` in milliseconds, so the two validators cannot drift.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from surge.api.spec import Saturation, SpecError, parse_policy_spec

TABLE = Path(__file__).resolve().parents[1] / "integration" / "crd_cases.yaml"
CASES: dict[str, Any] = yaml.safe_load(TABLE.read_text())

# Rejected by the API server for reasons the parser deliberately leaves to it.
SERVER_ONLY = {
    "unknown-field-strict": "the API server rejects or prunes unknown fields; the parser ignores them",
}


def _merge(base: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the table's comment specifies."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _ids(kind: str) -> list[Any]:
    return [pytest.param(c, id=c["id"]) for c in CASES.get(kind, [])]


@pytest.mark.parametrize("case", _ids("valid"))
def test_valid_cases_parse(case: dict[str, Any]) -> None:
    parse_policy_spec(_merge(CASES["base"], case.get("patch", {})))


@pytest.mark.parametrize("case", _ids("invalid"))
def test_invalid_cases_are_rejected(case: dict[str, Any]) -> None:
    spec = _merge(CASES["base"], case.get("patch", {}))
    if case["id"] in SERVER_ONLY:
        parse_policy_spec(spec)
        return
    with pytest.raises(SpecError):
        parse_policy_spec(spec)


def test_table_is_not_empty() -> None:
    assert len(CASES.get("invalid", [])) > 10
    assert CASES.get("valid")


def test_saturation_defaults_agree_with_the_crd() -> None:
    crd = yaml.safe_load(
        (TABLE.parents[2] / "crds" / "autoscaling.surge.dev_autoscalepolicies.yaml").read_text()
    )
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    metric = spec_schema["properties"]["horizontal"]["properties"]["metrics"]["items"]
    fields = metric["properties"]["resource"]["properties"]["saturation"]["properties"]
    default = Saturation()
    assert fields["utilization"]["default"] == default.utilization
    assert fields["scaleUpFactor"]["default"] == default.scale_up_factor
    # An empty saturation object parses to the same defaults the API server would fill in.
    raw = _merge(CASES["base"], {})
    raw["horizontal"]["metrics"][0]["resource"]["saturation"] = {}
    parsed = parse_policy_spec(raw).horizontal
    assert parsed is not None
    assert parsed.metrics[0].resource is not None
    assert parsed.metrics[0].resource.saturation == default
