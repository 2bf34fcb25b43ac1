"""`spec` of a VMGeneralization as frozen values, parsed once per pass.

The CRD validates at admission, but the operator must still survive objects written before a
schema change or by clients that skip defaults: parsing fills the documented defaults itself and
turns anything unusable into `errors.InvalidSpec` with the offending field named, instead of a
KeyError deep inside the workflow. Only names of Secrets are kept here, never their contents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from vmgen.domain import capture_spec, copy_spec, errors, model, windows_spec
from vmgen.domain.phases import STEP_SEQUENCE, StepName

_DURATION = re.compile(r"(\d+)([smh])")
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, *, field: str) -> timedelta:
    """Go-style durations the CRD allows: `90s`, `15m`, `1h30m`."""
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise errors.InvalidSpec(f"{field} must be a duration such as 90s, 15m or 1h30m, not {text!r}")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise errors.InvalidSpec(f"{field} must be longer than 0s")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class SshSpec:
    host: str
    port: int
    username: str
    private_key_secret: str
    host_keys: tuple[str, ...]
    """Pinned OpenSSH public keys; empty means: read them through Run Command before connecting."""


@dataclass(frozen=True)
class Timeouts:
    deprovision: timedelta = timedelta(minutes=15)
    shutdown: timedelta = timedelta(minutes=20)
    generalize: timedelta = timedelta(minutes=5)
    capture: timedelta = timedelta(hours=2)
    """Snapshots, the managed image and the gallery version with its replication, each step."""
    copy: timedelta = timedelta(minutes=30)
    """source Copy: stopping/starting the source, building the copy until its agent is ready, deleting it."""


@dataclass(frozen=True)
class Spec:
    vm: model.VmRef
    os_type: model.OsType | None
    """None is `Auto`: take Azure's word."""
    credentials_secret: str | None
    """Secret with AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET; None: the operator's identity."""
    ssh: SshSpec | None
    delete_user: bool
    timeouts: Timeouts
    mode: capture_spec.Mode = capture_spec.Mode.GENERALIZE
    approval: capture_spec.Approval = capture_spec.Approval.AUTOMATIC
    preserve_source: capture_spec.PreserveSource = field(default_factory=capture_spec.PreserveSource)
    capture: capture_spec.CaptureSpec = field(default_factory=capture_spec.CaptureSpec)
    deletion_policy: capture_spec.DeletionPolicy = capture_spec.DeletionPolicy.RETAIN
    windows: windows_spec.WindowsSpec = field(default_factory=windows_spec.WindowsSpec)
    """spec.windows and spec.winrm (domain/windows_spec.py)."""
    source: copy_spec.Source = copy_spec.Source.IN_PLACE
    copy: copy_spec.CopySpec = field(default_factory=copy_spec.CopySpec)
    """spec.source and spec.copy (domain/copy_spec.py)."""

    @property
    def copied(self) -> bool:
        """The job generalizes a copy of spec.vm, never spec.vm itself."""
        return self.source is copy_spec.Source.COPY

    @property
    def steps(self) -> tuple[StepName, ...]:
        """This job's steps, in order: the plain four, plus what the spec asks for."""
        if self.mode is capture_spec.Mode.PREFLIGHT:
            return (StepName.PREFLIGHT,)
        stop = self.copied and self.copy.stop_source_first
        wanted = {
            StepName.SNAPSHOT: self.preserve_source.snapshot or self.copied,
            StepName.STOP_SOURCE: stop,
            StepName.START_SOURCE: stop,
            StepName.COPY: self.copied,
            StepName.DELETE_COPY: self.copied,
            StepName.APPROVAL: self.approval is capture_spec.Approval.MANUAL,
            StepName.CAPTURE: self.capture.managed_image is not None,
            StepName.PUBLISH: self.capture.gallery_image_version is not None,
            StepName.PREFLIGHT: False,
        }
        return tuple(step for step in STEP_SEQUENCE if wanted.get(step, True))

    @classmethod
    def from_body(cls, spec: Mapping[str, Any]) -> Spec:
        vm = _mapping(spec, "vm", required=True)
        os_text = spec.get("osType", "Auto")
        os_types = {o.value: o for o in model.OsType}
        if os_text != "Auto" and os_text not in os_types:
            raise errors.InvalidSpec(f"spec.osType must be Auto, Linux or Windows, not {os_text!r}")
        timeouts = _mapping(spec, "timeouts")
        defaults = Timeouts()
        source = copy_spec.source(spec)
        return cls(
            vm=model.VmRef(
                subscription_id=_text(vm, "subscriptionId", "spec.vm"),
                resource_group=_text(vm, "resourceGroup", "spec.vm"),
                name=_text(vm, "name", "spec.vm"),
            ),
            os_type=os_types.get(os_text),
            credentials_secret=_secret_name(_mapping(spec, "azure"), "credentialsSecretRef", "spec.azure"),
            ssh=_ssh(spec, copied=source is copy_spec.Source.COPY),
            delete_user=bool(_mapping(spec, "linux").get("deprovisionUser", True)),
            timeouts=Timeouts(
                deprovision=_timeout(timeouts, "deprovision", defaults.deprovision),
                shutdown=_timeout(timeouts, "shutdown", defaults.shutdown),
                generalize=_timeout(timeouts, "generalize", defaults.generalize),
                capture=_timeout(timeouts, "capture", defaults.capture),
                copy=_timeout(timeouts, "copy", defaults.copy),
            ),
            mode=capture_spec.mode(spec),
            approval=capture_spec.approval(spec),
            preserve_source=capture_spec.preserve_source(spec),
            capture=capture_spec.capture(spec),
            deletion_policy=capture_spec.deletion_policy(spec),
            windows=windows_spec.parse(spec, duration=parse_duration),
            source=source,
            copy=copy_spec.copy(spec),
        )


def _ssh(spec: Mapping[str, Any], *, copied: bool) -> SshSpec | None:
    ssh = _mapping(spec, "ssh")
    if not ssh:
        return None
    port = ssh.get("port", 22)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise errors.InvalidSpec(f"spec.ssh.port must be between 1 and 65535, not {port!r}")
    keys = ssh.get("hostKeys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise errors.InvalidSpec("spec.ssh.hostKeys must be a list of OpenSSH public keys")
    key_secret = _secret_name(ssh, "privateKeySecretRef", "spec.ssh")
    if key_secret is None:
        raise errors.InvalidSpec("spec.ssh.privateKeySecretRef.name is required")
    host = ssh.get("host")
    if not copied or host:  # a copy is reached at its own address (status.outputs.copy.address)
        host = _text(ssh, "host", "spec.ssh")
    return SshSpec(
        host=str(host or ""),
        port=port,
        username=str(ssh.get("username") or "azureuser"),
        private_key_secret=key_secret,
        host_keys=tuple(k.strip() for k in keys if k.strip()),
    )


def _mapping(parent: Mapping[str, Any], key: str, *, required: bool = False) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise errors.InvalidSpec(f"spec.{key} must be an object")
    return value


def _text(parent: Mapping[str, Any], key: str, where: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise errors.InvalidSpec(f"{where}.{key} is required")
    return value


def _secret_name(parent: Mapping[str, Any], key: str, where: str) -> str | None:
    ref = parent.get(key)
    if ref is None:
        return None
    if not isinstance(ref, Mapping):
        raise errors.InvalidSpec(f"{where}.{key} must be an object with a name")
    return _text(ref, "name", f"{where}.{key}")


def _timeout(timeouts: Mapping[str, Any], key: str, default: timedelta) -> timedelta:
    value = timeouts.get(key)
    if value is None:
        return default
    return parse_duration(str(value), field=f"spec.timeouts.{key}")
