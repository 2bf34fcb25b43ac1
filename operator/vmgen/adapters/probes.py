"""Start-up checks: can the operator reach and use the Kubernetes API and the ARM endpoint at all?

Without them a wrong kubeconfig, a cluster that is down or a mistyped `--arm-endpoint` shows up as a
Python traceback from deep inside kopf or the Azure SDK, or worse, as an operator that starts, looks
healthy and fails every resource later. Each check raises `config.StartupError` with one line a person
can act on; `vmgen run` prints it and exits non-zero.

- Kubernetes: load the configuration (KUBECONFIG or the in-cluster ServiceAccount), then list at most
  one VMGeneralization where the operator serves them: one request that proves the server answers, the
  credentials are accepted, the CRD is installed and RBAC lets the operator read its resources.
- ARM: `GET {arm}/metadata/endpoints?api-version=2022-09-01`, unauthenticated. Any HTTP answer (even
  404 from a private endpoint that does not serve it) proves DNS, TCP and a TLS certificate that verifies
  against `--ca-bundle` or the system store; only a failure to get an answer stops the start.

Traps avoided: urllib3 retries three times by default and logs a WARNING per retry, which would bury
the one line: the probe makes exactly one attempt. urllib3 wraps the reason three layers deep
(MaxRetryError -> NewConnectionError -> OSError); the message names the innermost OS error
("Connection refused"), never an object repr. No credential is sent to ARM here, and the messages
carry no token or Secret.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence

import kubernetes.client
import kubernetes.config
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from vmgen import config
from vmgen.adapters import kube
from vmgen.domain import api

__all__ = ["check_arm", "check_kubernetes"]

TIMEOUT = (3, 10)
ARM_PROBE_PATH = "/metadata/endpoints?api-version=2022-09-01"


def check_kubernetes(namespaces: Sequence[str]) -> None:
    try:
        configuration = kube.load_configuration()
    except Exception as exc:  # ConfigException, YAMLError, OSError, binascii.Error, ...: all one answer
        raise config.StartupError(f"cannot load the Kubernetes configuration: {_one_line(exc)}") from None
    where = f"namespace {namespaces[0]}" if namespaces else "all namespaces"
    configuration.retries = 0  # one attempt, and no urllib3 "Retrying" warnings before our one line
    client = kubernetes.client.ApiClient(configuration)
    try:
        custom = kubernetes.client.CustomObjectsApi(client)
        if namespaces:
            custom.list_namespaced_custom_object(
                api.GROUP, api.VERSION, namespaces[0], api.PLURAL, limit=1, _request_timeout=TIMEOUT
            )
        else:
            custom.list_cluster_custom_object(
                api.GROUP, api.VERSION, api.PLURAL, limit=1, _request_timeout=TIMEOUT
            )
    except ApiException as exc:
        raise config.StartupError(_refusal(exc, server=configuration.host, where=where)) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise config.StartupError(
            f"cannot reach the Kubernetes API server at {configuration.host}: {_cause(exc)}"
        ) from None
    finally:
        client.close()


def _refusal(exc: ApiException, *, server: str, where: str) -> str:
    if exc.status == 401:
        return f"the Kubernetes API server at {server} refused the operator's credentials (401 Unauthorized)"
    if exc.status == 403:
        return (
            f"the operator may not list VMGeneralizations in {where} (403 Forbidden); apply the chart's RBAC"
            " to its ServiceAccount"
        )
    if exc.status == 404:
        return (
            f"the API server at {server} does not serve {api.PLURAL}.{api.GROUP}/{api.VERSION}; install the"
            " CRD first: vmgen crd | kubectl apply -f -"
        )
    return f"the Kubernetes API server at {server} answered {exc.status} {exc.reason or ''}".rstrip()


def check_arm(endpoint: str, *, ca_bundle: str | None) -> None:
    url = endpoint.rstrip("/") + ARM_PROBE_PATH
    if not url.lower().startswith("https://"):
        raise config.StartupError(f"the ARM endpoint must be an https:// URL, not {endpoint!r}")
    try:
        context = ssl.create_default_context(cafile=ca_bundle)
    except OSError as exc:
        raise config.StartupError(f"cannot read the CA bundle {ca_bundle}: {_cause(exc)}") from None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT[1], context=context):
            return
    except urllib.error.HTTPError:
        return  # an answer: the endpoint is there and its certificate verified
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, ssl.SSLCertVerificationError):
            detail = f"its TLS certificate is not trusted ({reason.verify_message}); set --ca-bundle"
        else:
            detail = _cause(reason) if isinstance(reason, BaseException) else str(reason)
        raise config.StartupError(
            f"cannot reach the Azure Resource Manager endpoint {endpoint}: {detail}"
        ) from None


def _cause(exc: BaseException) -> str:
    """The innermost OS-level reason of a wrapped transport error, in plain words."""
    seen: BaseException | None = exc
    best = exc
    for _ in range(10):  # urllib3 nests three or four deep; never follow a chain for ever
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            best = seen
        inner = getattr(seen, "reason", None)
        seen = inner if isinstance(inner, BaseException) else (seen.__cause__ or seen.__context__)
    if isinstance(best, OSError) and best.strerror:
        return best.strerror
    return _one_line(best) or type(best).__name__


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
