"""Raw JSON requests through the official client's connection and auth handling.

The generated model classes are slow to build and validate for lists of hundreds of pods; an autoscaler
only reads a few fields, so it reads plain JSON. One narrow function, used by every module that talks to
the API server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def request(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    content_type: str | None = None,
    timeout: float = 10.0,
) -> Any:
    """Sends one request and returns the decoded JSON body; raises ApiException on a non-2xx answer."""
    headers = {"Accept": JSON}
    if content_type:
        headers["Content-Type"] = content_type
    params = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=list((query or {}).items()),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*params, _request_timeout=timeout)
    response.read()  # type: ignore[no-untyped-call]  # the generated client leaves it untyped
    if not 200 <= response.status <= 299:
        raise ApiException(http_resp=response)
    return json.loads(response.data) if response.data else None


def api_client(kubeconfig: str = "", *, pool_size: int = 16) -> client.ApiClient:
    """A client for the given kubeconfig, else in-cluster config, else $KUBECONFIG or ~/.kube/config.

    `pool_size` keeps one connection per I/O thread; the client's default (a few) makes busy threads open
    and drop TLS connections.
    """
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)
