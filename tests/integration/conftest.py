"""The operator under test: kopf's KopfRunner in a thread, watching every namespace of the real cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kopf.testing import KopfRunner

from tests.conftest import ROOT, Testbed

CRD = ROOT / "crds" / "autoscaling.surge.dev_autoscalepolicies.yaml"


@pytest.fixture(scope="session")
def crd(testbed: Testbed) -> Path:
    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    testbed.kubectl(
        "wait", "--for=condition=Established", "crd/autoscalepolicies.autoscaling.surge.dev", "--timeout=60s"
    )
    return CRD


@pytest.fixture(scope="session")
def operator(testbed: Testbed, crd: Path) -> Iterator[KopfRunner]:
    """One operator for the session, configured only through its environment, like in production."""
    env = {
        "KUBECONFIG": str(testbed.kubeconfig),
        "SURGE_PROMETHEUS_URL": testbed.prometheus_url,
        "SURGE_WATCH_TIMEOUT": "10",  # lets the runner stop within seconds
        "SURGE_EVENT_REPEAT_SECONDS": "600",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    runner = KopfRunner(["run", "-A", "--standalone", "-m", "surge.handlers"], timeout=60)
    with runner:  # returns once kopf reports that the operator is ready
        yield runner
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    assert runner.exception is None, runner.output[-4000:]
