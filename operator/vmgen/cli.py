"""`vmgen`: the operator's command line (`vmgen run`, `vmgen crd`).

Every `run` flag has a `VMGEN_*` environment twin (the Helm chart sets those); a flag wins over its
variable. kopf and the Kubernetes client are imported only when the operator really starts, after
the environment is final: the Kubernetes client reads KUBECONFIG when it is imported. The CRD ships
inside the package (operator/vmgen/crds links to the repository's crds/) and is read with
importlib.resources, so `vmgen crd | kubectl apply -f -` works from the image too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import resources
from typing import TypeVar

from vmgen import __version__, config

CRD_FILE = "vmgeneralization.yaml"
T = TypeVar("T")


def crd_text() -> str:
    return (resources.files("vmgen") / "crds" / CRD_FILE).read_text(encoding="utf-8")


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A config parser for argparse, which shows only an ArgumentTypeError's own words."""

    def parsed(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parsed


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _limit(text: str) -> int:
    try:
        return config.parse_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="vmgen", description="Generalize Azure VMs from Kubernetes.")
    root.add_argument("--version", action="version", version=f"vmgen {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator", description="Run the vmgen operator.")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch this namespace (repeatable) [VMGEN_NAMESPACES, comma-separated]",
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (default)")
    run.add_argument("--arm-endpoint", help="Azure Resource Manager URL [VMGEN_ARM_ENDPOINT]")
    run.add_argument("--credential-scope", help="ARM token scope [VMGEN_CREDENTIAL_SCOPE]")
    run.add_argument("--authority", help="Microsoft Entra authority URL [VMGEN_AUTHORITY]")
    run.add_argument("--ca-bundle", help="PEM file to trust for ARM and Entra [VMGEN_CA_BUNDLE]")
    run.add_argument(
        "--poll-interval",
        type=_argument(config.parse_interval),
        metavar="SECONDS",
        help="seconds between Azure operation polls, default 5 [VMGEN_POLL_INTERVAL]",
    )
    run.add_argument(
        "--max-requests-in-flight",
        type=_limit,
        metavar="N",
        help="ARM requests at once, all subscriptions, default 64 [VMGEN_MAX_REQUESTS_IN_FLIGHT]",
    )
    run.add_argument(
        "--max-subscription-requests-in-flight",
        type=_limit,
        metavar="N",
        help="ARM requests at once per subscription, default 16 [VMGEN_MAX_SUBSCRIPTION_REQUESTS_IN_FLIGHT]",
    )
    run.add_argument(
        "--operator-namespace",
        metavar="NS",
        help="namespace of the per-VM Leases [VMGEN_OPERATOR_NAMESPACE, POD_NAMESPACE]",
    )
    run.add_argument(
        "--liveness",
        metavar="URL",
        dest="liveness_endpoint",
        help="serve a health probe, e.g. http://0.0.0.0:8080/healthz [VMGEN_LIVENESS_ENDPOINT]",
    )
    _ship_flags(run)
    run.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        default=None,
        help="debug logging of vmgen and kopf (never secrets) [VMGEN_VERBOSE]",
    )
    commands.add_parser("crd", help="print the VMGeneralization CustomResourceDefinition")
    return root


def _ship_flags(run: argparse.ArgumentParser) -> None:
    """Metrics, the identity policy and leader election: what running in production adds."""
    run.add_argument(
        "--metrics-port",
        type=_argument(config.parse_port),
        metavar="PORT",
        help="serve Prometheus metrics on this port (/metrics), 0 for none (default) [VMGEN_METRICS_PORT]",
    )
    run.add_argument(
        "--identity-namespaces",
        type=_names,
        metavar="NS,NS",
        help="namespaces whose VMGeneralizations may use the operator's own Azure identity (default:"
        " none) [VMGEN_IDENTITY_NAMESPACES]",
    )
    run.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="act only while holding the leader Lease in the operator namespace (default: on)"
        " [VMGEN_LEADER_ELECTION]",
    )
    run.add_argument(
        "--leader-lease",
        metavar="NAME",
        help=f"name of the leader Lease, default {config.DEFAULT_LEADER_LEASE} [VMGEN_LEADER_LEASE]",
    )
    run.add_argument(
        "--lease-duration",
        type=_argument(config.parse_lease_duration),
        metavar="SECONDS",
        help=f"seconds before a standby takes over an unrenewed leader Lease, default"
        f" {config.DEFAULT_LEASE_DURATION:g} [VMGEN_LEASE_DURATION]",
    )


def settings(args: argparse.Namespace, env: dict[str, str]) -> config.Config:
    """The environment's Config with every given flag applied on top."""
    result = config.Config.from_env(env)
    flags = {
        name: getattr(args, name)
        for name in (
            "arm_endpoint",
            "credential_scope",
            "authority",
            "ca_bundle",
            "poll_interval",
            "max_requests_in_flight",
            "max_subscription_requests_in_flight",
            "operator_namespace",
            "liveness_endpoint",
            "verbose",
            "metrics_port",
            "identity_namespaces",
            "leader_election",
            "leader_lease",
            "lease_duration",
        )
        if getattr(args, name) is not None
    }
    if args.all_namespaces:
        flags["namespaces"] = ()
    elif args.namespaces:
        flags["namespaces"] = tuple(args.namespaces)
    return replace(result, **flags)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "crd":
        sys.stdout.write(crd_text())
        return 0
    try:
        chosen = settings(args, dict(os.environ))
    except ValueError as exc:
        print(f"vmgen: {exc}", file=sys.stderr)
        return 2
    from vmgen import handlers  # imports kopf and the Kubernetes client: only now, with the final env

    try:
        handlers.run(chosen)
    except config.StartupError as exc:
        print(f"vmgen: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
