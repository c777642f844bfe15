"""Parser fuzzing from the CRD's schema (issue 10 part 5); the server-side slice is in
tests/integration/test_crd_fuzz_server.py.

- Every spec generated within the schema and its CEL rules parses, without any exception.
- Whatever the input (values just outside the schema, arbitrary JSON at any node, numbers of any size),
  the parser raises nothing but SpecError, and its message names a field of the spec.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings

from surge.api.spec import PolicySpec, SpecError, parse_policy_spec
from tests.unit.crd_strategies import garbled_specs, policy_specs

# Small and bounded: these run with the unit tests (about a second each). SURGE_FUZZ_EXAMPLES=2000 for a
# deeper local run.
FAST = settings(
    max_examples=int(os.environ.get("SURGE_FUZZ_EXAMPLES", "50")),
    deadline=500,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(policy_specs(valid=True))
def test_specs_the_crd_accepts_parse(spec: dict[str, Any]) -> None:
    assert isinstance(parse_policy_spec(spec), PolicySpec)


@FAST
@given(policy_specs(valid=False))
def test_near_schema_specs_raise_only_spec_error(spec: dict[str, Any]) -> None:
    _parse_or_spec_error(spec)


@FAST
@given(garbled_specs())
def test_arbitrary_json_at_any_node_raises_only_spec_error(spec: dict[str, Any]) -> None:
    _parse_or_spec_error(spec)


def _parse_or_spec_error(spec: dict[str, Any]) -> None:
    """Parses, or raises SpecError naming a field with a short message; anything else escapes and fails."""
    error: SpecError | None = None
    try:
        parse_policy_spec(spec)
    except SpecError as exc:
        error = exc
    if error is not None:
        assert error.path.startswith("spec"), error
        assert len(str(error)) < 600, "messages stay short whatever the input"
