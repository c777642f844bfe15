"""The parser and the real API server give the same verdict on specs generated from the CRD's schema.

A slice of the unit fuzzing (tests/unit/test_crd_fuzz.py) against the real kube-apiserver: each generated
spec, valid or just outside the schema, is created with server-side dry run and fieldValidation=Strict
(kubectl's default) and parsed by ``parse_policy_spec``. Accepted by the server => parsed; parsed =>
accepted by the server. Nothing is stored.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.api.spec import SpecError, parse_policy_spec
from tests.conftest import fresh_namespace
from tests.support.wait import wait_until
from tests.unit.crd_strategies import policy_specs

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL, KIND = "autoscaling.surge.dev", "v1alpha1", "autoscalepolicies", "AutoScalePolicy"
SLICE = settings(
    max_examples=int(os.environ.get("SURGE_FUZZ_SERVER_EXAMPLES", "40")),
    deadline=None,  # a request to a shared API server
    derandomize=os.environ.get("SURGE_FUZZ_RANDOM") != "1",  # SURGE_FUZZ_RANDOM=1: new examples each run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def fuzz_namespace(k8s_api: client.ApiClient, crd: Path) -> Iterator[str]:
    namespaces = fresh_namespace(k8s_api, "crdfuzz-")
    namespace = next(namespaces)
    objects = client.CustomObjectsApi(k8s_api)
    probe = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "a"},
        "horizontal": {"maxReplicas": 2, "metrics": [{"type": "Pods"}]},
    }

    def this_crd_is_served() -> bool:  # the Pods type exists only in this CRD: a fresh one must answer
        try:
            _create(objects, namespace, probe)
        except ApiException as exc:
            return "a metric of type Pods must set pods" in _message(exc)
        return False

    wait_until(this_crd_is_served, timeout=60, what="the AutoScalePolicy endpoint to validate with this CRD")
    yield namespace
    next(namespaces, None)  # fresh_namespace's own clean-up: delete it


def _create(objects: client.CustomObjectsApi, namespace: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": f"fuzz-{uuid.uuid4().hex[:8]}"},
        "spec": spec,
    }
    objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, dry_run="All", field_validation="Strict"
    )


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.body)


def test_parser_and_api_server_agree(k8s_api: client.ApiClient, fuzz_namespace: str) -> None:
    objects = client.CustomObjectsApi(k8s_api)
    verdicts: list[bool] = []

    @SLICE
    @given(spec=st.one_of(policy_specs(valid=True), policy_specs(valid=False)))
    def agree(spec: dict[str, Any]) -> None:
        server_error, status = "", 201
        try:
            _create(objects, fuzz_namespace, spec)
        except ApiException as exc:
            server_error, status = _message(exc), exc.status
        assert status in (201, 400, 422), server_error  # a verdict, never a timeout or a 500
        parser_error = ""
        try:
            parse_policy_spec(spec)
        except SpecError as exc:
            parser_error = str(exc)
        verdicts.append(server_error == "")
        assert (server_error == "") == (parser_error == ""), (
            f"server: {server_error or 'accepted'}\nparser: {parser_error or 'accepted'}\n"
            f"spec: {json.dumps(spec)}"
        )

    agree()
    # A slice of only valid or only invalid specs would prove little.
    assert 0 < sum(verdicts) < len(verdicts), f"{sum(verdicts)} of {len(verdicts)} accepted"
