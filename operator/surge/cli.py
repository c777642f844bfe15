"""Command line: `surge run` starts the operator; `surge version` prints the version. Parsing only."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from surge import __version__
from surge.config import OperatorConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="surge", description="Surge autoscaler for bursty workloads")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    defaults = OperatorConfig.from_env()
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=list(defaults.namespaces),
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    run.add_argument(
        "--kubeconfig", default=defaults.kubeconfig, help="kubeconfig file (default: in-cluster)"
    )
    run.add_argument(
        "--prometheus-url", default=defaults.prometheus_url, help="default Prometheus for PromQL"
    )
    run.add_argument(
        "--liveness", default="", help="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument("--metrics-port", type=int, default=0, help="serve the operator's /metrics on this port")
    run.add_argument(
        "--metrics-bind-address", default=defaults.metrics_bind_address, help="address /metrics binds to"
    )
    run.add_argument(
        "--prometheus-allowed-url",
        action="append",
        default=list(defaults.prometheus_allowed_urls),
        help="a Prometheus base URL policies may name in serverAddress (repeatable); "
        "default: only --prometheus-url",
    )
    run.add_argument(
        "--prometheus-tenancy",
        choices=("", "namespace"),
        default=defaults.prometheus_tenancy,
        help="'namespace': send each policy's queries with its namespace as the enforced label value "
        "(--prometheus-url must be a label-enforcing proxy such as prom-label-proxy); default: off",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        default=defaults.leader_election,
        help="run as one of several replicas: only the holder of the Lease acts",
    )
    run.add_argument("--lease-name", default=defaults.lease_name, help="name of the Lease")
    run.add_argument(
        "--lease-namespace", default=defaults.lease_namespace, help="namespace of the Lease (default: own)"
    )
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("-v", "--verbose", action="store_true")
    sub.add_parser("version", help="print the version")
    from surge.simulate import cli as simulate_cli  # the simulator's own arguments live in its package

    simulate_cli.add_parser(sub)
    from surge.explain import cli as explain_cli  # `surge explain`: its arguments live in its package

    explain_cli.add_parser(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> OperatorConfig:
    """The environment's settings with the flags on top (so a setting without a flag is never dropped)."""
    return dataclasses.replace(
        OperatorConfig.from_env(),
        prometheus_url=args.prometheus_url,
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        liveness=args.liveness,
        metrics_port=args.metrics_port,
        metrics_bind_address=args.metrics_bind_address,
        prometheus_allowed_urls=tuple(args.prometheus_allowed_url),
        prometheus_tenancy=args.prometheus_tenancy,
        leader_election=args.leader_elect,
        lease_name=args.lease_name,
        lease_namespace=args.lease_namespace,
        log_json=args.log_format == "json",
        verbose=args.verbose,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "simulate":
        from surge.simulate import cli as simulate_cli

        return simulate_cli.run(args)
    if args.command == "explain":
        from surge.explain import cli as explain_cli

        return explain_cli.run(args)
    cfg = config_from_args(args)
    from surge.handlers import run_operator  # kopf is imported only when the operator runs

    run_operator(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
