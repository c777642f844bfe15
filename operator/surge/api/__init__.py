"""Surge API: spec parsing (frozen dataclasses), quantities, conditions and status shaping.

Pure and dependency-free; every other layer may import it.
"""

from surge.api.conditions import get_condition, is_condition_true, set_condition
from surge.api.quantity import (
    format_cpu,
    format_duration,
    format_memory,
    format_quantity,
    parse_duration,
    parse_quantity,
    quantity_to_float,
)
from surge.api.spec import PolicySpec, SpecError, parse_policy_spec
from surge.api.status import build_status, merge_patch, status_patch

__all__ = [
    "PolicySpec",
    "SpecError",
    "build_status",
    "format_cpu",
    "format_duration",
    "format_memory",
    "format_quantity",
    "get_condition",
    "is_condition_true",
    "merge_patch",
    "parse_duration",
    "parse_policy_spec",
    "parse_quantity",
    "quantity_to_float",
    "set_condition",
    "status_patch",
]
