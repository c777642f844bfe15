"""`surge explain NAME [-n NS] [--kubeconfig PATH] [-o text|json]`: reads the policy, its Events and its
checkpoint with the plain (sync) client and prints render.py's explanation. No kopf here."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from kubernetes import config
from kubernetes.client.exceptions import ApiException

from surge.explain.render import explain, to_json, to_text
from surge.kube import api_client, request

GROUP, VERSION = "autoscaling.surge.dev", "v1alpha1"


def add_parser(sub: Any) -> None:
    """Adds the `explain` subcommand to the `surge` parser's subparsers."""
    p = sub.add_parser("explain", help="explain an AutoScalePolicy's last decision in words")
    p.add_argument("name", help="name of the AutoScalePolicy")
    p.add_argument("-n", "--namespace", default="", help="namespace (default: the context's, else default)")
    p.add_argument("--kubeconfig", default="", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")


def default_namespace(kubeconfig: str) -> str:
    """The current context's namespace, else "default" (also without any kubeconfig)."""
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig or None)  # type: ignore[no-untyped-call]
    except Exception:  # no kubeconfig at all (in a pod): nothing to read a namespace from
        return "default"
    namespace = ((active or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else "default"


def _optional(api: Any, path: str, query: dict[str, str] | None = None) -> tuple[Any, str]:
    """GET that may fail without failing the command: (answer or None, why not)."""
    try:
        return request(api, "GET", path, query=query), ""
    except ApiException as exc:
        return None, f"{exc.status} {exc.reason}"
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def run(args: argparse.Namespace) -> int:
    namespace = args.namespace or default_namespace(args.kubeconfig)
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}"
    try:
        api = api_client(args.kubeconfig, pool_size=2)
        policy = request(api, "GET", f"{base}/autoscalepolicies/{args.name}")
    except ApiException as exc:
        if exc.status == 404:
            print(f"error: AutoScalePolicy {namespace}/{args.name} not found", file=sys.stderr)
        else:
            print(
                f"error: reading AutoScalePolicy {namespace}/{args.name}: {exc.status} {exc.reason}",
                file=sys.stderr,
            )
        return 1
    except Exception as exc:  # no kubeconfig, server unreachable, ...: one line, no traceback
        print(f"error: cannot reach the API server: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    uid = str((policy.get("metadata") or {}).get("uid") or "")
    events, events_err = _optional(
        api, f"/api/v1/namespaces/{namespace}/events", {"fieldSelector": f"involvedObject.uid={uid}"}
    )
    checkpoint, _ = _optional(api, f"{base}/autoscalepolicycheckpoints/{args.name}")
    items = [e for e in (events or {}).get("items") or () if isinstance(e, dict)]
    explanation = explain(
        policy, items, checkpoint if isinstance(checkpoint, dict) else None, now=time.time()
    )
    if args.output == "json":
        out = to_json(explanation)
        if events_err:
            out["notes"].append(f"events not readable: {events_err}")
        print(json.dumps(out, indent=2))
    else:
        lines = to_text(explanation)
        if events_err:
            lines.append(f"Note: events not readable: {events_err}")
        print("\n".join(lines))
    return 0
