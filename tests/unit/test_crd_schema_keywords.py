"""Every node of the CRD schemas uses only structural-schema keywords.

A YAML slip (an unquoted comma in a flow-mapping description) turns text into a stray key, which PyYAML
reads happily and the API server refuses when the CRD is applied: catch it without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CRDS = sorted((Path(__file__).resolve().parents[2] / "crds").glob("autoscaling.surge.dev_*.yaml"))
KEYWORDS = {
    "type", "format", "description", "properties", "items", "required", "enum", "default", "nullable",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
    "pattern", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
    "additionalProperties", "allOf", "anyOf", "oneOf", "not", "title", "example",
    "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
}  # fmt: skip


def _nodes(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    assert isinstance(schema, dict), f"{path}: a schema must be a mapping, got {schema!r}"
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(key) or []):
            yield from _nodes(sub, f"{path}.{key}[{i}]")


@pytest.mark.parametrize("crd", CRDS, ids=[p.name for p in CRDS])
def test_every_schema_node_uses_only_schema_keywords(crd: Path) -> None:
    doc = yaml.safe_load(crd.read_text())
    for version in doc["spec"]["versions"]:
        for path, node in _nodes(version["schema"]["openAPIV3Schema"], version["name"]):
            stray = set(node) - KEYWORDS
            assert not stray, f"{crd.name} {path}: not schema keywords: {sorted(stray)}"
            if "description" in node:
                assert isinstance(node["description"], str), f"{crd.name} {path}: description is not text"
