"""docs/troubleshooting.md has an entry for every reason the operator can put in a condition or an Event.

The reasons are collected from the code, not listed here: the shared vocabulary (surge.api.reasons), the
behavior limits that become ScalingLimited / AbleToScale reasons, and the checkpoint problems that become
Warning Events (constants and the literal first argument of every CheckpointError(...)).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import surge.decision.checkpoint as checkpoint_module
from surge.api import conditions, reasons
from surge.decision import behavior, schedule
from surge.persistence import checkpoints

DOC = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"


def _constants(module: object, names: list[str]) -> set[str]:
    return {value for name in names if isinstance(value := getattr(module, name), str)}


def _checkpoint_error_reasons() -> set[str]:
    tree = ast.parse(Path(str(checkpoint_module.__file__)).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "CheckpointError" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return found


def emitted_reasons() -> set[str]:
    found = _constants(reasons, [n for n in reasons.__all__ if n.isupper()])
    found |= _constants(behavior, [n for n in behavior.__all__ if n.isupper()])
    found |= _constants(schedule, [n for n in schedule.__all__ if n.isupper()])  # scheduled floors
    found |= {checkpoints.UNREADABLE} | _checkpoint_error_reasons()
    return found


def _headings() -> set[str]:
    """The words of every `### Reason` heading (one heading may name several reasons: `### A, B`)."""
    words: set[str] = set()
    for line in DOC.read_text().splitlines():
        if line.startswith("### "):
            words |= set(re.findall(r"`([A-Za-z]+)`", line))
    return words


def test_the_reason_list_is_collected_from_the_code() -> None:
    found = emitted_reasons()
    # A few anchors from each source, so an empty collection cannot pass the test below.
    assert {
        "FailedGetScale",
        "InternalError",
        "ScaleUpLimit",
        "CheckpointTooOld",
        "MalformedCheckpoint",
    } <= found
    assert len(found) >= 35


def test_every_reason_the_operator_emits_has_a_troubleshooting_entry() -> None:
    missing = sorted(emitted_reasons() - _headings())
    assert not missing, f"docs/troubleshooting.md has no '### `Reason`' entry for: {', '.join(missing)}"


def test_every_condition_type_is_explained() -> None:
    text = DOC.read_text()
    types = _constants(conditions, [n for n in conditions.__all__ if n.isupper()])
    missing = sorted(t for t in types if f"`{t}`" not in text)
    assert not missing, missing


def test_the_doc_names_no_reason_the_code_does_not_know() -> None:
    stale = sorted(_headings() - emitted_reasons())
    assert not stale, f"entries for reasons the operator never emits: {', '.join(stale)}"
