"""The kopf edge: wires VMGeneralization objects to `vmgen.workflow` and nothing more (kopf is imported
here only; the adapters are built by `vmgen.wiring`).

One `@kopf.daemon` per unfinished VMGeneralization loops pass -> wait -> pass until the workflow says
it is terminal. kopf starts a daemon for every matching object when the operator starts, so a
restarted (even SIGKILLed) operator resumes each resource from its status; daemons are filtered out
once the phase is Succeeded or Failed, so finished objects cost nothing and keep no finalizer.

Traps avoided:
- Waiting between passes listens to the daemon's stop flag (SIGTERM, deletion) and looks, once a
  second, at the watch-updated body for the confirm annotation or a new generation; it does not wake
  on every watch event, because our own status patches produce them and would defeat the backoff.
- kopf's progress storage is not used for the workflow (kopf forgets it between cycles, kopf issue
  819); kopf keeps its bookkeeping in vmgen.io annotations, ours lives in status.
- kopf logs at DEBUG only; our logging keeps the Kubernetes, urllib3 and Azure SDK loggers at
  WARNING even with --verbose, because the Kubernetes client logs whole response bodies (a Secret's
  data) at DEBUG. Events are posted with kopf.event; log lines are never posted as Events.
- Login reads KUBECONFIG at login time (`kube.load_configuration`), not at import time.
- With leader election, kopf runs only in the replica holding the leader Lease; a leader that cannot
  renew exits at once (os._exit) rather than stopping kopf gracefully, which could outlast the Lease
  and let two replicas act (docs/operations.md#high-availability).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf

from vmgen import config, wiring, workflow
from vmgen.domain import api, errors, retry

CANCELLATION_GRACE_SECONDS = 10.0
"""How long a stopping daemon may finish its pass before it is cancelled (a deprovision takes seconds)."""
NOTICE_SECONDS = 1.0
"""How often a waiting daemon looks at its (watch-updated) body for a confirmation or spec change."""
LEADERSHIP_LOST_EXIT = 3
QUIET_LOGGERS = ("kubernetes", "urllib3", "azure", "msal", "asyncssh", "aiohttp.access")


class KopfEvents:
    """`ports.EventRecorder` posting Kubernetes Events through kopf's background poster."""

    def __init__(self, body: kopf.Body) -> None:
        self._body = body

    def normal(self, reason: str, message: str) -> None:
        kopf.event(self._body, type="Normal", reason=reason, message=message)

    def warning(self, reason: str, message: str) -> None:
        kopf.event(self._body, type="Warning", reason=reason, message=message)


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in ("Succeeded", "Failed", "PreflightComplete")


def _deletes_created(spec: kopf.Spec, **_: Any) -> bool:
    return spec.get("deletionPolicy") == "Delete"


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    c = wiring.kube_connection()
    return kopf.ConnectionInfo(
        server=c.server,
        ca_path=c.ca_path,
        insecure=c.insecure,
        username=c.username,
        password=c.password,
        scheme=c.scheme,
        token=c.token,
        certificate_path=c.certificate_path,
        private_key_path=c.private_key_path,
    )


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = api.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=api.KOPF_PREFIX, key=api.LAST_HANDLED_KEY
    )
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60


@kopf.daemon(
    api.GROUP,
    api.VERSION,
    api.PLURAL,
    id="workflow",
    when=_unfinished,
    cancellation_backoff=CANCELLATION_GRACE_SECONDS,
    cancellation_timeout=5.0,
)
async def drive(
    body: kopf.Body,
    namespace: str | None,
    name: str,
    stopped: kopf.DaemonStopped,
    memo: Any,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    assert namespace is not None, "VMGeneralization is namespaced"
    runtime: wiring.Runtime = memo["runtime"]
    writer = runtime.status_writer(namespace=namespace, name=name, stored=body.get("status"))
    flow = workflow.Workflow(
        ports=runtime.ports, stored=body.get("status"), writer=writer, events=KopfEvents(body)
    )
    try:
        await _drive(flow, body, namespace=namespace, name=name, stopped=stopped, logger=logger)
    finally:
        writer.stop()
        await flow.aclose()
        if stopped.reason is not None and kopf.DaemonStoppingReason.RESOURCE_DELETED in stopped.reason:
            # Only now, after the pass in flight has ended: releasing earlier (from an on.delete
            # handler running beside the daemon) would let another resource claim a VM still in use.
            await flow.release(_resource(body, namespace=namespace, name=name))


async def _drive(
    flow: workflow.Workflow,
    body: kopf.Body,
    *,
    namespace: str,
    name: str,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
) -> None:
    failures = 0
    while not stopped:
        noticed = _noticeable(body)
        try:
            delay = await flow.run_pass(_resource(body, namespace=namespace, name=name))
            failures = 0
        except errors.VmgenError as exc:  # the API server did not take our status: nothing moved on
            failures += 1
            delay = retry.kubernetes_backoff(failures)
            logger.warning(f"{exc.reason}: {exc.message} Next pass in {delay:g}s.")
        except Exception:  # a bug must not kill the daemon silently nor spin it
            failures += 1
            delay = retry.backoff(failures)
            logger.exception(f"The pass failed unexpectedly; next pass in {delay:g}s.")
        if delay is None:
            logger.info(f"Finished: phase {flow.status.phase.value}.")
            return
        await _pause(stopped, body, noticed, delay)


@kopf.on.delete(api.GROUP, api.VERSION, api.PLURAL, id="cleanup", when=_deletes_created)
async def clean_up(body: kopf.Body, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    """deletionPolicy Delete: kopf holds the resource with its finalizer until this succeeds (retried on
    errors); resources with Retain get no finalizer at all."""
    assert namespace is not None, "VMGeneralization is namespaced"
    runtime: wiring.Runtime = memo["runtime"]
    writer = runtime.status_writer(namespace=namespace, name=name, stored=body.get("status"))
    flow = workflow.Workflow(
        ports=runtime.ports, stored=body.get("status"), writer=writer, events=KopfEvents(body)
    )
    try:
        await flow.clean_up(_resource(body, namespace=namespace, name=name))
    except errors.VmgenError as exc:
        raise kopf.TemporaryError(f"{exc.reason}: {exc.message}", delay=retry.backoff(3)) from None
    finally:
        writer.stop()
        await flow.aclose()


def _resource(body: kopf.Body, *, namespace: str, name: str) -> workflow.Resource:
    generation = body.metadata.get("generation")
    return workflow.Resource(
        namespace=namespace,
        name=name,
        generation=generation if isinstance(generation, int) else None,
        spec=_plain(body.spec),
        annotations=dict(body.metadata.annotations),
    )


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) if isinstance(v, Mapping) else v for k, v in value.items()}


def _noticeable(body: kopf.Body) -> tuple[object, ...]:
    """What a person changes to make the workflow look again at once: the confirm annotation, the spec."""
    annotations = body.metadata.annotations
    return (
        annotations.get(api.CONFIRM_ANNOTATION),
        annotations.get(api.APPROVE_ANNOTATION),
        body.metadata.get("generation"),
    )


async def _pause(
    stopped: kopf.DaemonStopped, body: kopf.Body, noticed: tuple[object, ...], delay: float
) -> None:
    """Sleep `delay` seconds, less if the daemon is stopped or a person changed what `_noticeable` reads.

    kopf keeps `body` up to date from its watch, so looking at it costs no API call."""
    deadline = asyncio.get_running_loop().time() + delay
    while not stopped and _noticeable(body) == noticed:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return
        await stopped.wait(min(remaining, NOTICE_SECONDS))


def configure_logging(*, verbose: bool) -> None:
    kopf.configure(verbose=verbose, log_prefix=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def run(settings: config.Config) -> None:
    """Check the cluster and ARM, build the runtime (wiring.py), wait for leadership when elected, and
    run kopf until SIGTERM/SIGINT. Raises config.StartupError when the operator cannot start."""
    configure_logging(verbose=settings.verbose)
    wiring.check_startup(settings)
    runtime = wiring.build(settings)
    if settings.metrics_port:
        try:
            wiring.serve_metrics(runtime, settings.metrics_port)
        except OSError as exc:
            runtime.close()
            raise config.StartupError(
                f"cannot serve metrics on port {settings.metrics_port}: {exc.strerror}"
            ) from None
    logging.getLogger("vmgen").info(
        "vmgen starting: ARM %s, namespaces %s, leases in %s, poll every %gs, leader election %s (pid %d)",
        settings.arm_endpoint,
        ", ".join(settings.namespaces) or "all",
        settings.operator_namespace,
        settings.poll_interval,
        "on" if settings.leader_election else "off",
        os.getpid(),
    )
    try:
        asyncio.run(_operate(settings, runtime))
    except OSError as exc:  # a port kopf's liveness endpoint could not bind, most often
        raise config.StartupError(f"cannot serve the operator: {exc.strerror or exc}") from None
    finally:
        runtime.close()


async def _operate(settings: config.Config, runtime: wiring.Runtime) -> None:
    """Only the leader runs kopf; leadership lost means stop acting at once (exit), as client-go does:
    a graceful kopf stop could outlive the Lease and let two replicas act."""
    elector = wiring.elector(settings, runtime) if settings.leader_election else None
    if elector is not None:
        probe = wiring.standby_probe(settings)
        await probe.start()
        try:
            await elector.acquire()
        finally:
            await probe.stop()
    operator = asyncio.create_task(
        kopf.operator(
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            standalone=True,
            liveness_endpoint=settings.liveness_endpoint,
            memo=kopf.Memo(runtime=runtime),
        )
    )
    if elector is None:
        await operator
        return
    keeper = asyncio.create_task(elector.keep())
    done, _ = await asyncio.wait({operator, keeper}, return_when=asyncio.FIRST_COMPLETED)
    if keeper in done:
        logging.getLogger("vmgen").error("Leadership lost: exiting so that only the new leader acts.")
        logging.shutdown()
        os._exit(LEADERSHIP_LOST_EXIT)
    keeper.cancel()
    await elector.release()
    operator.result()
