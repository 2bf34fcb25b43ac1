"""A real Kubernetes control plane on loopback: etcd + kube-apiserver, as controller-runtime's envtest.

Tests and the demo need the real API machinery (CRD schemas, CEL `x-kubernetes-validations`, the status
subresource, RBAC, watches), not a fake; they do not need nodes, a scheduler or controllers. So we run
the pinned etcd and kube-apiserver built by `vmgen_testbed.binaries` with freshly generated PKI:
one CA signs the serving certificate and an admin client certificate (O=system:masters); an ECDSA key
pair signs service-account tokens. A self-contained kubeconfig (data embedded) points at it.

Traps avoided:
- Ports: we ask the kernel for free ports, which another process may grab before etcd binds them; a
  start that fails with "address already in use" is retried on new ports.
- Readiness means `/readyz` answers 200 (post-start hooks such as RBAC bootstrap finished), not "the
  port is open". The wait is bounded and its error carries the tail of the apiserver and etcd logs.
- Leaks: each server runs in its own process group and is killed as a group (SIGTERM, then SIGKILL),
  and the temporary folder is removed, also when start-up fails or the `with` body raises.
- kubectl caches API discovery per host:port under ~/.kube/cache; a later control plane on the same
  port would get stale discovery (missing CRDs), so our kubectl uses a cache inside the temporary folder.
- An outage (`stop_apiserver()` / `start_apiserver()`) stops kube-apiserver alone and starts it again
  with the very same command line: a new port or new certificates would be a different cluster to every
  client, and etcd keeps running so nothing stored is lost.
- The kubernetes Python client reads `KUBECONFIG` when imported: load `kubeconfig` explicitly.
- Without kube-controller-manager there is no namespace controller or garbage collector: a deleted
  namespace stays Terminating and owner references are not followed. The ServiceAccount admission
  plugin is off (it would wait for a token controller); everything vmgen relies on is real.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vmgen_testbed.binaries import Binaries, ensure_binaries

__all__ = ["ControlPlane", "ControlPlaneError", "KubectlError"]

_PORT_ATTEMPTS = 3
_STOP_GRACE_SECONDS = 5.0
_LOG_TAIL_LINES = 30


class ControlPlaneError(RuntimeError):
    """The control plane did not become ready; the message includes the servers' log tails."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; unlike CalledProcessError, its text shows what kubectl said."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}"


class _PortTaken(Exception):
    pass


@dataclass(frozen=True)
class _Running:
    workdir: Path
    server: str
    kubeconfig: Path
    processes: dict[str, subprocess.Popen[bytes]]  # by name; kube-apiserver first, stopped before etcd
    pki: _Pki
    apiserver_command: tuple[str, ...]  # to start it again on the same port, certificates and etcd


class ControlPlane:
    """etcd + kube-apiserver on 127.0.0.1; use as a context manager (or `start()` / `stop()`)."""

    def __init__(
        self,
        *,
        binaries: Binaries | None = None,
        parent_dir: Path | None = None,
        startup_timeout: float = 60.0,
        extra_apiserver_args: Sequence[str] = (),
    ) -> None:
        self._binaries = binaries
        self._parent_dir = parent_dir
        self._startup_timeout = startup_timeout
        self._extra_apiserver_args = tuple(extra_apiserver_args)
        self._running: _Running | None = None
        self.startup_seconds = 0.0

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def kubeconfig(self) -> Path:
        return self._state().kubeconfig

    @property
    def server(self) -> str:
        return self._state().server

    @property
    def workdir(self) -> Path:
        """The temporary folder (PKI, etcd data, logs, kubeconfig); removed by `stop()`."""
        return self._state().workdir

    @property
    def pids(self) -> tuple[int, ...]:
        """Process ids (= process group ids) of etcd and kube-apiserver."""
        return tuple(process.pid for process in self._state().processes.values())

    @property
    def kubectl_path(self) -> Path:
        """The pinned kubectl binary (same build as the apiserver)."""
        self._binaries = self._binaries or ensure_binaries()
        return self._binaries.kubectl

    def wait_established(self, crd: str, *, timeout: float = 60.0) -> None:
        """`kubectl wait --for=condition=Established crd/<crd>`, also right after the apply: kubectl 1.34
        fails at once ("status.conditions accessor error: <nil>") instead of waiting when the API server
        has not written the new CRD's status yet, which a large CRD makes likely."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.kubectl(
                "wait", "--for=condition=Established", f"crd/{crd}", f"--timeout={int(timeout)}s", check=False
            )
            if result.returncode == 0:
                return
            if "accessor error" not in result.stderr or time.monotonic() > deadline:
                raise KubectlError(
                    result.returncode, ["kubectl", "wait", f"crd/{crd}"], result.stdout, result.stderr
                )
            time.sleep(0.2)

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl as the admin user against this control plane."""
        state = self._state()
        command = [
            str(self.kubectl_path), "--kubeconfig", str(state.kubeconfig),
            "--cache-dir", str(state.workdir / "kubectl-cache"), *args,
        ]  # fmt: skip
        result = subprocess.run(command, input=input, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, command, result.stdout, result.stderr)
        return result

    def start(self) -> None:
        if self._running is not None:
            raise RuntimeError("ControlPlane is already running")
        self._binaries = self._binaries or ensure_binaries()
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="vmgen-kube-", dir=self._parent_dir))
        try:
            pki = _Pki.generate(workdir / "pki")
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                port, processes, command = self._launch(self._binaries, workdir, pki)
                server = f"https://127.0.0.1:{port}"
                self._running = _Running(workdir, server, workdir / "kubeconfig", processes, pki, command)
                try:
                    _wait_ready(server, pki, processes, workdir, deadline=started + self._startup_timeout)
                    break
                except _PortTaken:
                    _terminate(processes)
                    shutil.rmtree(workdir / "etcd", ignore_errors=True)
                    if attempt == _PORT_ATTEMPTS:
                        raise ControlPlaneError(f"no free ports after {attempt} attempts") from None
            _write_kubeconfig(workdir / "kubeconfig", server=server, pki=pki)
        except BaseException:
            self.stop()
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Kill both servers' process groups and remove the temporary folder. Idempotent."""
        running, self._running = self._running, None
        if running is not None:
            _terminate(running.processes)
            shutil.rmtree(running.workdir, ignore_errors=True)

    @property
    def apiserver_running(self) -> bool:
        return self._state().processes["kube-apiserver"].poll() is None

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver alone (SIGTERM to its group, SIGKILL after the grace), as in an outage or
        a control-plane upgrade: etcd keeps every object, clients get connection refused until
        `start_apiserver()`."""
        _terminate({"kube-apiserver": self._state().processes["kube-apiserver"]})

    def start_apiserver(self, *, timeout: float | None = None) -> float:
        """Start kube-apiserver again with the same command line: the same port, certificates and etcd,
        so every kubeconfig and token stays valid. Waits for `/readyz`; returns the seconds it took."""
        state = self._state()
        if self.apiserver_running:
            raise RuntimeError("kube-apiserver is already running")
        started = time.monotonic()
        with (state.workdir / "kube-apiserver.log").open("ab") as log:
            log.write(b"\n=== kube-apiserver started again ===\n")
        state.processes["kube-apiserver"] = _spawn(
            list(state.apiserver_command), log=state.workdir / "kube-apiserver.log", append=True
        )
        deadline = started + (self._startup_timeout if timeout is None else timeout)
        try:
            _wait_ready(state.server, state.pki, state.processes, state.workdir, deadline=deadline)
        except _PortTaken:  # another process bound the port meanwhile: clients cannot follow a new one
            raise ControlPlaneError(
                f"the port of {state.server} was taken while kube-apiserver was down"
            ) from None
        return time.monotonic() - started

    def _state(self) -> _Running:
        if self._running is None:
            raise RuntimeError("ControlPlane is not running")
        return self._running

    def _launch(
        self, binaries: Binaries, workdir: Path, pki: _Pki
    ) -> tuple[int, dict[str, subprocess.Popen[bytes]], tuple[str, ...]]:
        etcd_port, apiserver_port = _free_ports(2)
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = _spawn(
            [
                str(binaries.etcd),
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                "--listen-peer-urls=http://127.0.0.1:0",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            log=workdir / "etcd.log",
        )
        command = (
            str(binaries.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={apiserver_port}",
            f"--cert-dir={pki.folder}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={pki.service_account_public}",
            f"--service-account-signing-key-file={pki.service_account_private}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            *self._extra_apiserver_args,
        )
        apiserver = _spawn(list(command), log=workdir / "kube-apiserver.log")
        return apiserver_port, {"kube-apiserver": apiserver, "etcd": etcd}, command


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _spawn(command: list[str], *, log: Path, append: bool = False) -> subprocess.Popen[bytes]:
    with log.open("ab" if append else "wb") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def _terminate(processes: Mapping[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        _signal_group(process, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        _signal_group(process, signal.SIGKILL)  # anything the server left in its group


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def _wait_ready(
    server: str,
    pki: _Pki,
    processes: Mapping[str, subprocess.Popen[bytes]],
    workdir: Path,
    *,
    deadline: float,
) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(pki.admin_cert, pki.admin_key)
    host, port = server.removeprefix("https://").split(":")
    last = "no answer yet"
    while True:
        exited = [name for name, process in processes.items() if process.poll() is not None]
        if exited:
            logs = _log_tails(workdir)
            if "address already in use" in logs:
                raise _PortTaken()
            raise ControlPlaneError(f"{' and '.join(exited)} exited during start-up\n{logs}")
        connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=2)
        try:
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            body = response.read().decode(errors="replace")
            if response.status == 200:
                return
            last = f"/readyz answered {response.status}: {body[-2000:]}"
        except OSError as error:
            last = f"/readyz: {error}"
        finally:
            connection.close()
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"kube-apiserver not ready in time; last: {last}\n{_log_tails(workdir)}")
        time.sleep(0.05)


def _log_tails(workdir: Path) -> str:
    parts = []
    for name in ("kube-apiserver.log", "etcd.log"):
        lines = (workdir / name).read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        parts.append(f"--- last {len(lines)} lines of {name} ---\n" + "\n".join(lines))
    return "\n".join(parts)


def _write_kubeconfig(path: Path, *, server: str, pki: _Pki) -> None:
    def data(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "vmgen-testbed",
                "cluster": {"server": server, "certificate-authority-data": data(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "vmgen-admin",
                "user": {
                    "client-certificate-data": data(pki.admin_cert),
                    "client-key-data": data(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": "vmgen-testbed",
                "context": {"cluster": "vmgen-testbed", "user": "vmgen-admin", "namespace": "default"},
            }
        ],
        "current-context": "vmgen-testbed",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


@dataclass(frozen=True)
class _Pki:
    """One CA for serving and client certificates, an admin client cert, the service-account keys.

    ECDSA P-256 throughout: generating it takes microseconds where RSA takes tens of milliseconds.
    """

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def serving_cert(self) -> Path:
        return self.folder / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.folder / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.folder / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.folder / "admin.key"

    @property
    def service_account_private(self) -> Path:
        return self.folder / "sa.key"

    @property
    def service_account_public(self) -> Path:
        return self.folder / "sa.pub"

    @classmethod
    def generate(cls, folder: Path) -> _Pki:
        folder.mkdir(mode=0o700)
        pki = cls(folder)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vmgen-testbed-ca")])
        ca = (
            _builder(ca_name, ca_name, ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_pem(pki.ca_cert, ca.public_bytes(serialization.Encoding.PEM))

        def leaf(subject: x509.Name, usage: x509.ObjectIdentifier, key: Path) -> x509.CertificateBuilder:
            leaf_key = ec.generate_private_key(ec.SECP256R1())
            _write_key(key, leaf_key)
            builder = (
                _builder(subject, ca_name, leaf_key.public_key())
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_key_usage(cert_sign=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
                )
            )
            return builder

        serving = leaf(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
            ExtendedKeyUsageOID.SERVER_AUTH,
            pki.serving_key,
        ).add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                ]
            ),
            critical=False,
        )
        _write_pem(
            pki.serving_cert, serving.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )
        admin = leaf(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "vmgen-admin"),
                ]
            ),
            ExtendedKeyUsageOID.CLIENT_AUTH,
            pki.admin_key,
        )
        _write_pem(
            pki.admin_cert, admin.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )

        service_account = ec.generate_private_key(ec.SECP256R1())
        _write_key(pki.service_account_private, service_account)
        _write_pem(
            pki.service_account_public,
            service_account.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        return pki


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    _write_pem(
        path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def _write_pem(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.write_bytes(data)
