"""One Debian guest per simulated VM: real sshd and real waagent, isolated, created in a fraction of a second.

Problem: the operator deprovisions Linux VMs by running `sudo waagent -deprovision+user -force` over SSH,
and that command deletes users, host keys and leases and renames the host. To test it for real each VM
needs its own disposable machine that the host can reach over TCP, without VMs or container runtimes.

How a sandbox is made (`SandboxHost.create`):
- disk: overlayfs with the cached read-only Debian tree (`rootfs.ensure_rootfs()`) as lower layer and
  upper/work dirs on a per-VM tmpfs, so a VM costs no copy and deprovision never touches the cache;
- network: a network namespace with a veth pair on its own 10.213.N.0/24 (a /24 not overlapping any
  route or address on the host); the host side is the gateway (.1), the VM is .4 as on Azure;
- provisioning, as Azure (cloud-init + waagent) leaves a VM: hostname, /etc/hosts, resolv.conf, a DHCP
  lease where waagent's Debian osutil looks, the admin user with an ed25519 authorized key and the
  NOPASSWD line in /etc/sudoers.d/waagent, per-VM ed25519 + ecdsa host keys and an RSA one of its own
  (taken from the cached pool, `rootfs.rsa_host_key`: generating RSA would cost a second per VM),
  /var/lib/waagent with ovf-env.xml naming the user, bash histories;
- processes: a holder started as `unshare --uts --ipc --mount --pid --fork --kill-child` inside the
  network namespace mounts /proc, /sys, /dev (+ devpts), /run into the merged tree, pivots into it and
  becomes PID 1 of the VM (a tiny reaper). "Booting" enters those namespaces with nsenter, sets the
  hostname from /etc/hostname and execs sshd. Run Command enters them the same way, so it keeps
  working after deprovision has broken SSH, like the Azure agent's channel.
- copies (issue 11): `capture_os_disk()` writes the overlay's upper layer as it is at that moment to a
  tar (with xattrs, so overlay whiteouts and opaque directories survive: deleted files stay deleted);
  `SandboxHost.create_from_disk()` boots a new sandbox whose upper layer starts as that tar, on the same
  read-only lower layer, in its own network namespace and address. Nothing is provisioned again: like an
  Azure VM attached to a copied disk, it keeps the user, host keys and hostname it had.

Traps avoided:
- The UTS namespace is mandatory: deprovision runs `hostname localhost.localdomain`.
- The holder pivots into its root and detaches the host's mount tree: a private copy of the host's
  mounts would otherwise pin other sandboxes' overlays and /run/netns entries, so their teardown would
  leave mounts and namespaces alive until this sandbox ends.
- Azure's platform addresses (wire server / DNS 168.63.129.16, IMDS 169.254.169.254) exist nowhere
  here; routes inside the VM mark them unreachable so resolver and agent fail at once instead of
  hanging on timeouts (sudo resolves the hostname, which after deprovision is in no /etc/hosts).
- No systemd in the sandbox: waagent's `systemctl stop walinuxagent` just fails with 127, which the
  agent ignores (chk_err=False), so no shims are installed.
- Leftovers of crashed runs: every sandbox is registered in /run/vmgen-sandboxes with its owner's pid and
  start time; `cleanup_stale()` removes processes, mounts, veths and namespaces of dead owners only, so
  two test sessions on one machine do not break each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import xml.sax.saxutils
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from vmgen_testbed.guest import GuestFactory, GuestRequest, ScriptResult, ShellNotSupported
from vmgen_testbed.linux import rootfs as rootfs_module

__all__ = ["PREFIX", "REGISTRY", "LinuxSandbox", "SandboxError", "SandboxHost", "cleanup_stale"]

PREFIX = "vmgsb"  # netns "vmgsb<N>", host-side veth "vmgsb<N>h"
REGISTRY = Path("/run/vmgen-sandboxes")
SECOND_OCTET = 213
PLATFORM_ADDRESSES = ("168.63.129.16", "169.254.169.254")
_rsa_keys_taken = itertools.count()
"""The next unused key of the RSA pool: per process, so no two sandboxes of a run share a host key."""
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
}

# Runs on the host tools as PID 1 of the new namespaces, before pivoting into the VM's tree.
_HOLDER_SETUP = r"""
set -eu
root=$1
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o nosuid,mode=0755,size=1m dev "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3; mknod -m 666 "$root/dev/zero" c 1 5; mknod -m 666 "$root/dev/full" c 1 7
mknod -m 666 "$root/dev/random" c 1 8; mknod -m 666 "$root/dev/urandom" c 1 9
mknod -m 666 "$root/dev/tty" c 5 0
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$root/dev/shm"
ln -s pts/ptmx "$root/dev/ptmx"; ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"; ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t tmpfs -o nosuid,nodev,mode=0755 run "$root/run"
mkdir -m 0755 "$root/run/sshd" "$root/run/lock"
cd "$root"
pivot_root . .
umount -l .
echo ready
exec /usr/bin/python3 -c "$2" </dev/null >/dev/null 2>&1
"""

# PID 1 of the VM: reaps orphans (sshd children killed by power_off) so nothing lingers as a zombie.
_REAPER = """
import os, signal
def reap(*_):
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
signal.signal(signal.SIGCHLD, reap)
while True:
    signal.pause()
"""

# "Boot": the hostname comes from /etc/hostname as at startup, then sshd in the foreground (-D -e logs
# to the sandbox's sshd.log on the host). sshd must be exec'd by absolute path (it re-execs itself).
_BOOT = "[ -s /etc/hostname ] && hostname -F /etc/hostname; exec /usr/sbin/sshd -D -e"


class SandboxError(RuntimeError):
    """A sandbox could not be created or driven; the message says what is missing or what failed."""


@dataclass(frozen=True)
class _Slot:
    index: int

    @property
    def netns(self) -> str:
        return f"{PREFIX}{self.index}"

    @property
    def host_if(self) -> str:
        return f"{PREFIX}{self.index}h"

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.{SECOND_OCTET}.{self.index}.0/24")

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def ip(self) -> str:
        return str(self.network.network_address + 4)


def _run(*argv: str, stdin: str | None = None) -> str:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=_ENV)
    if result.returncode != 0:
        raise SandboxError(f"{' '.join(argv[:4])}... failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def _write(path: Path, text: str, *, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, *owner)
    path.chmod(mode)


def _public_line(line: str) -> str:
    key_type, blob = line.split()[:2]
    return f"{key_type} {blob}"


class LinuxSandbox:
    """A running Debian guest. Implements the simulator's `Guest` protocol."""

    port = 22

    def __init__(self, *, name: str, username: str, directory: Path, private_key: bytes) -> None:
        self.name = name
        self.username = username
        self.private_key = private_key
        self.private_key_path = directory / "id_ed25519"
        self.rootfs = directory / "rootfs"
        self.host_keys: list[str] = []
        self._slot = _Slot(-1)  # set by SandboxHost.create once a network is allocated
        self._dir = directory
        self._holder: subprocess.Popen[bytes] | None = None
        self._init_pid = 0
        self._sshd: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._discard: Callable[[], None] | None = None  # set by SandboxHost: destroys this sandbox

    def __repr__(self) -> str:
        return f"LinuxSandbox(name={self.name!r}, ip={self.ip!r}, username={self.username!r})"

    @property
    def ip(self) -> str:
        return self._slot.ip

    @property
    def netns(self) -> str:
        return self._slot.netns

    @property
    def host_interface(self) -> str:
        """The host side of the VM's veth pair (its gateway)."""
        return self._slot.host_if

    # --- Guest protocol -------------------------------------------------------------------------
    async def power_on(self) -> None:
        await asyncio.to_thread(self.boot)

    async def power_off(self) -> None:
        await asyncio.to_thread(self.halt)

    async def run_script(self, script: str, *, shell: str = "bash", timeout: float = 60) -> ScriptResult:  # noqa: ASYNC109 - the Guest protocol's signature
        """Run `script` as root inside the VM (its namespaces and root), like the agent's Run Command.
        Raises TimeoutError (after killing the script) when it runs longer than `timeout`."""
        if shell != "bash":
            raise ShellNotSupported(f"a Linux guest cannot run {shell} scripts")
        process = await asyncio.create_subprocess_exec(
            *self._enter(),
            "/bin/bash",
            "-c",
            script,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_ENV,
            start_new_session=True,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            _kill_group_except_leader(process.pid)
            await process.wait()
            raise TimeoutError(f"script on {self.name} still running after {timeout:g}s; killed") from None
        assert process.returncode is not None
        return ScriptResult(
            exit_code=process.returncode,
            stdout=stdout.decode(errors="replace"),
            stderr=stderr.decode(errors="replace"),
        )

    async def capture_os_disk(self, destination: Path) -> None:
        """The `guest.DiskCapture` of a snapshot: the upper layer, now, as a tar (crash-consistent)."""
        await asyncio.to_thread(self.capture_upper_layer, destination)

    async def discard(self) -> None:
        """The `guest.Discardable` of a deleted VM: remove this sandbox (mounts, network, files)."""
        if self._discard is not None:
            await asyncio.to_thread(self._discard)

    def capture_upper_layer(self, destination: Path) -> None:
        upper = self._dir / "disk" / "upper"
        result = subprocess.run(
            [
                "tar",
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
                "-C",
                str(upper),
                "-cpf",
                str(destination),
                ".",
            ],
            capture_output=True,
            text=True,
            env=_ENV,
        )
        # 1: a file changed while it was read, which a running VM's disk does (crash-consistent copy)
        if result.returncode not in (0, 1):
            raise SandboxError(f"capturing the disk of {self.name} failed: {result.stderr.strip()}")

    # --- synchronous core -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while sshd is running (whether or not it can still serve connections)."""
        return self._sshd is not None and self._sshd.poll() is None

    def boot(self, *, timeout: float = 10.0) -> bool:
        """Start sshd; True once it listens. False when it exits instead (e.g. deprovision removed the
        host keys: sshd refuses to start, like a deprovisioned VM after a restart). Idempotent."""
        with self._lock:
            if self.running:
                return True
            log = (self._dir / "sshd.log").open("ab")
            with log:
                self._sshd = subprocess.Popen(
                    [*self._enter(), "/bin/sh", "-c", _BOOT],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=_ENV,
                )
            deadline = time.monotonic() + timeout
            while not self._listening():
                if self._sshd.poll() is not None:
                    return False
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"sshd of {self.name} not listening after {timeout:.0f}s: {self.sshd_log()}"
                    )
                time.sleep(0.005)
            return True

    def halt(self, *, timeout: float = 10.0) -> None:
        """Kill every process of the VM except its PID 1, so nothing answers on its address."""
        with self._lock:
            if not self._init_pid:
                return
            deadline = time.monotonic() + timeout
            while victims := [pid for pid in self.pids() if pid != self._init_pid]:
                for pid in victims:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                if time.monotonic() > deadline:
                    raise SandboxError(f"processes {victims} of {self.name} survived SIGKILL")
                time.sleep(0.002)
            if self._sshd is not None:
                self._sshd.wait(timeout)
                self._sshd = None

    def sshd_log(self) -> str:
        path = self._dir / "sshd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def _enter(self) -> list[str]:
        return [
            "/usr/bin/nsenter",
            f"--target={self._init_pid}",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--root",
            "--wd",
        ]

    def pids(self) -> list[int]:
        """Host pids of the live (non-zombie) processes in the VM's PID namespace."""
        try:
            namespace = os.readlink(f"/proc/{self._init_pid}/ns/pid")
        except OSError:
            return []
        pids = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry.name}/ns/pid") == namespace:
                        pids.append(int(entry.name))
        return pids

    def _listening(self) -> bool:
        """sshd listens on port 22 in the VM's network namespace (read without connecting to it)."""
        try:
            table = Path(f"/proc/{self._init_pid}/net/tcp").read_text()
        except OSError:
            return False
        rows = (line.split() for line in table.splitlines()[1:])
        return any(row[1].endswith(":0016") and row[3] == "0A" for row in rows)  # local port 22, LISTEN

    def _start_holder(self) -> None:
        holder = subprocess.Popen(
            [
                "/usr/bin/nsenter",
                f"--net=/run/netns/{self._slot.netns}",
                "/usr/bin/unshare",
                "--uts",
                "--ipc",
                "--mount",
                "--pid",
                "--fork",
                "--kill-child",
                "--propagation=private",
                "/bin/sh",
                "-c",
                _HOLDER_SETUP,
                "holder",
                str(self.rootfs),
                _REAPER,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=(self._dir / "holder.log").open("ab"),
            env=_ENV,
        )
        self._holder = holder
        assert holder.stdout is not None
        with holder.stdout:
            if holder.stdout.readline() != b"ready\n":
                holder.wait()
                log = (self._dir / "holder.log").read_text(errors="replace")
                raise SandboxError(f"sandbox {self.name} did not start (exit {holder.returncode}): {log}")
        children = Path(f"/proc/{holder.pid}/task/{holder.pid}/children").read_text().split()
        self._init_pid = int(children[0])

    def _kill_holder(self) -> None:
        if self._init_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._init_pid, signal.SIGKILL)  # the kernel then kills the whole PID namespace
        if self._holder is not None:
            try:
                self._holder.wait(10)  # unshare must reap PID 1 itself, or PID 1 is left to the host's init
            except subprocess.TimeoutExpired:
                self._holder.kill()
                self._holder.wait(10)
        if self._sshd is not None:
            self._sshd.wait(10)
        self._sshd = None


class SandboxHost:
    """Owns the sandboxes of one process: numbering, creation, teardown (also of crashed runs')."""

    def __init__(self, state_dir: Path) -> None:
        _require_prerequisites()
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lower = rootfs_module.ensure_rootfs()
        rootfs_module.ensure_rsa_pool()
        self._sandboxes: dict[str, LinuxSandbox] = {}
        self._lock = threading.Lock()
        cleanup_stale()

    @property
    def sandboxes(self) -> list[LinuxSandbox]:
        with self._lock:
            return list(self._sandboxes.values())

    def create(self, name: str, *, username: str = "azureuser") -> LinuxSandbox:
        """Create, provision and boot a sandbox; returns once its sshd listens."""
        if not _NAME.match(name):
            raise ValueError(f"sandbox name {name!r} is not a valid hostname label")
        if not _USER.match(username):
            raise ValueError(f"user name {username!r} is not a valid Linux user name")
        with self._lock:
            if name in self._sandboxes:
                raise ValueError(f"a sandbox named {name!r} already exists")
            directory = self.state_dir / name
            directory.mkdir()
            self._sandboxes[name] = sandbox = LinuxSandbox(
                name=name, username=username, directory=directory, private_key=_ed25519_private()
            )
        sandbox._discard = lambda: self.destroy(sandbox)
        try:
            sandbox._slot = _allocate_slot(directory)
            self._mount(sandbox)
            self._provision(sandbox)
            sandbox._start_holder()
            if not sandbox.boot():
                raise SandboxError(f"sshd of {name} exited at start: {sandbox.sshd_log()}")
        except BaseException:
            self.destroy(sandbox)
            raise
        return sandbox

    def create_from_disk(self, name: str, disk: Path) -> LinuxSandbox:
        """Boot a new sandbox whose disk starts as `disk` (a tar from `capture_upper_layer`): same files,
        own network namespace and address, nothing provisioned again. Returns once sshd listens, or once
        it has exited (a deprovisioned disk has no host keys, so its sshd refuses to start, as on Azure)."""
        if not _NAME.match(name):
            raise ValueError(f"sandbox name {name!r} is not a valid hostname label")
        with self._lock:
            if name in self._sandboxes:
                raise ValueError(f"a sandbox named {name!r} already exists")
            directory = self.state_dir / name
            directory.mkdir()
            self._sandboxes[name] = sandbox = LinuxSandbox(
                name=name, username="", directory=directory, private_key=b""
            )
        sandbox._discard = lambda: self.destroy(sandbox)
        try:
            sandbox._slot = _allocate_slot(directory)
            self._mount(sandbox, disk=disk)
            root = sandbox.rootfs
            sandbox.host_keys = [
                _public_line(path.read_text())
                for path in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub"))
            ]
            users = [line.split(":") for line in (root / "etc/passwd").read_text().splitlines()]
            sandbox.username = next((u[0] for u in users if len(u) > 2 and u[2] == "1000"), "")
            sandbox._start_holder()
            sandbox.boot()
        except BaseException:
            self.destroy(sandbox)
            raise
        return sandbox

    def guest_factory(self, booted: dict[str, LinuxSandbox] | None = None) -> GuestFactory:
        """The simulator's `GuestFactory`: a Linux VM whose OS disk holds a captured sandbox boots a new
        sandbox from it (recorded in `booted` by VM name); any other VM runs without a guest."""

        async def boot(request: GuestRequest) -> LinuxSandbox | None:
            if request.os_type != "Linux" or request.os_disk is None:
                return None
            guest = await asyncio.to_thread(self.create_from_disk, request.name, request.os_disk)
            if booted is not None:
                booted[request.name] = guest
            return guest

        return boot

    def destroy(self, sandbox: LinuxSandbox) -> None:
        """Stop every process of the sandbox and remove its mounts, network and files. Idempotent."""
        sandbox._kill_holder()
        _remove(sandbox._slot, sandbox._dir)
        with self._lock:
            if self._sandboxes.get(sandbox.name) is sandbox:
                del self._sandboxes[sandbox.name]

    def close(self) -> None:
        errors = []
        for sandbox in self.sandboxes:
            try:
                self.destroy(sandbox)
            except Exception as error:  # keep tearing down the others
                errors.append(f"{sandbox.name}: {error}")
        if errors:
            raise SandboxError("teardown failed: " + "; ".join(errors))

    def __enter__(self) -> SandboxHost:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- creation steps ---------------------------------------------------------------------------
    def _mount(self, sandbox: LinuxSandbox, *, disk: Path | None = None) -> None:
        content = disk
        disk = sandbox._dir / "disk"
        disk.mkdir()
        _run("mount", "-t", "tmpfs", "-o", "mode=0755,size=1g", f"{PREFIX}-disk", str(disk))
        (disk / "upper").mkdir()
        (disk / "work").mkdir()
        if content is not None:
            _run(
                "tar",
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
                "-C",
                str(disk / "upper"),
                "-xpf",
                str(content),
            )
        sandbox.rootfs.mkdir()
        _run(
            "mount",
            "-t",
            "overlay",
            "-o",
            f"lowerdir={self._lower},upperdir={disk / 'upper'},workdir={disk / 'work'}",
            f"{PREFIX}-rootfs",
            str(sandbox.rootfs),
        )

    def _provision(self, sandbox: LinuxSandbox) -> None:
        root, name, user, slot = sandbox.rootfs, sandbox.name, sandbox.username, sandbox._slot
        key = serialization.load_ssh_private_key(sandbox.private_key, password=None)
        user_public = (
            key.public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )
        sandbox.private_key_path.write_bytes(sandbox.private_key)
        sandbox.private_key_path.chmod(0o600)

        _run("chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", user)
        entry = next(
            line.split(":")
            for line in (root / "etc/passwd").read_text().splitlines()
            if line.startswith(f"{user}:")
        )
        owner = (int(entry[2]), int(entry[3]))
        home = root / "home" / user
        _write(home / ".ssh/authorized_keys", f"{user_public}\n", mode=0o600, owner=owner)
        (home / ".ssh").chmod(0o700)
        os.chown(home / ".ssh", *owner)
        _write(home / ".bash_history", "sudo apt-get update\nls -la\n", mode=0o600, owner=owner)
        _write(root / "root/.bash_history", "cat /etc/os-release\n", mode=0o600)
        _write(root / "etc/sudoers.d/waagent", f"{user} ALL=(ALL) NOPASSWD: ALL\n", mode=0o440)

        rsa_pem = rootfs_module.rsa_host_key(next(_rsa_keys_taken))
        for kind, private in (
            ("ed25519", ed25519.Ed25519PrivateKey.generate()),
            ("ecdsa", ec.generate_private_key(ec.SECP256R1())),
            ("rsa", serialization.load_ssh_private_key(rsa_pem, password=None)),
        ):
            pem = private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            ).decode()
            public = (
                private.public_key()
                .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
                .decode()
            )
            _write(root / f"etc/ssh/ssh_host_{kind}_key", pem, mode=0o600)
            _write(root / f"etc/ssh/ssh_host_{kind}_key.pub", f"{public} root@{name}\n")
            sandbox.host_keys.append(public)
        # What cloud-init writes on Azure's Debian images: keys only.
        _write(root / "etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication no\n")

        _write(root / "etc/hostname", f"{name}\n")
        _write(
            root / "etc/hosts",
            f"127.0.0.1 localhost\n{slot.ip} {name}\n::1 localhost ip6-localhost ip6-loopback\n",
        )
        domain = "vmgen.internal.cloudapp.net"
        _write(root / "etc/resolv.conf", f"nameserver 168.63.129.16\nsearch {domain}\n")
        _write(root / "var/lib/dhcp/dhclient.eth0.leases", _lease(slot, domain))
        lib = root / "var/lib/waagent"
        _write(lib / "ovf-env.xml", _ovf_env(name, user, user_public), mode=0o600)
        _write(lib / "provisioned", "")
        _write(lib / "Incarnation", "1")
        _write(lib / "WireServerEndpoint", "168.63.129.16")
        _write(lib / "GoalState.1.xml", "<GoalState><Incarnation>1</Incarnation></GoalState>\n")
        _write(root / "var/log/waagent.log", "INFO Daemon Azure Linux Agent is running as a simulated VM\n")


# --- module helpers ---------------------------------------------------------------------------------


def _require_prerequisites() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("root (mounts, network namespaces)")
    for tool in ("ip", "nsenter", "unshare", "mount", "umount", "chroot", "pivot_root"):
        if shutil.which(tool, path=_ENV["PATH"]) is None:
            problems.append(f"the {tool} command")
    if "overlay" not in Path("/proc/filesystems").read_text():
        problems.append("overlayfs in the kernel (modprobe overlay)")
    if problems:
        raise SandboxError("Linux sandboxes need " + ", ".join(problems) + "; `make test` runs them as root")


def _kill_group_except_leader(leader: int) -> None:
    """Kill the processes of `leader`'s process group, but not `leader` (an nsenter): it must outlive its
    child to reap it. Were both killed at once, the child would be reparented to the host's init (its
    parent lived outside the VM's PID namespace) and could linger there as a zombie."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != leader:
            with contextlib.suppress(OSError, IndexError):
                if int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[2]) == leader:
                    os.kill(int(entry.name), signal.SIGKILL)


def _ed25519_private() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )


def _lease(slot: _Slot, domain: str) -> str:
    # Shape of an Azure dhclient lease; option 245 carries the wire server address waagent looks for.
    return (
        "lease {\n"
        '  interface "eth0";\n'
        f"  fixed-address {slot.ip};\n"
        "  option subnet-mask 255.255.255.0;\n"
        f"  option routers {slot.gateway};\n"
        "  option dhcp-lease-time 4294967295;\n"
        "  option dhcp-message-type 5;\n"
        "  option domain-name-servers 168.63.129.16;\n"
        "  option dhcp-server-identifier 168.63.129.16;\n"
        "  option unknown-245 a8:3f:81:10;\n"
        f'  option domain-name "{domain}";\n'
        "  renew 4 2106/02/07 06:28:15;\n"
        "  rebind 4 2106/02/07 06:28:15;\n"
        "  expire 4 2106/02/07 06:28:15;\n"
        "}\n"
    )


def _ovf_env(hostname: str, username: str, public_key: str) -> str:
    """ovf-env.xml as the agent keeps it after provisioning (no password). `-deprovision+user` reads the
    user name from it; the parser also requires HostName, both Version elements and ProvisionGuestAgent."""
    esc = xml.sax.saxutils.escape
    return f"""<?xml version="1.0" encoding="utf-8"?>
<ns0:Environment xmlns:ns0="http://schemas.dmtf.org/ovf/environment/1" \
xmlns:ns1="http://schemas.microsoft.com/windowsazure" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <ns1:ProvisioningSection>
    <ns1:Version>1.0</ns1:Version>
    <ns1:LinuxProvisioningConfigurationSet>
      <ns1:ConfigurationSetType>LinuxProvisioningConfiguration</ns1:ConfigurationSetType>
      <ns1:HostName>{esc(hostname)}</ns1:HostName>
      <ns1:UserName>{esc(username)}</ns1:UserName>
      <ns1:DisableSshPasswordAuthentication>true</ns1:DisableSshPasswordAuthentication>
      <ns1:SSH>
        <ns1:PublicKeys>
          <ns1:PublicKey>
            <ns1:Path>/home/{esc(username)}/.ssh/authorized_keys</ns1:Path>
            <ns1:Value>{esc(public_key)}</ns1:Value>
          </ns1:PublicKey>
        </ns1:PublicKeys>
      </ns1:SSH>
    </ns1:LinuxProvisioningConfigurationSet>
  </ns1:ProvisioningSection>
  <ns1:PlatformSettingsSection>
    <ns1:Version>1.0</ns1:Version>
    <ns1:PlatformSettings>
      <ns1:KmsServerHostname>kms.core.windows.net</ns1:KmsServerHostname>
      <ns1:ProvisionGuestAgent>true</ns1:ProvisionGuestAgent>
      <ns1:GuestAgentPackageName xsi:nil="true" />
      <ns1:PreprovisionedVm>false</ns1:PreprovisionedVm>
    </ns1:PlatformSettings>
  </ns1:PlatformSettingsSection>
</ns0:Environment>
"""


@contextlib.contextmanager
def _registry_lock() -> Iterator[None]:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    with (REGISTRY / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other threads and other test sessions allocate too
        yield


def _used_networks() -> list[ipaddress.IPv4Network]:
    used = []
    for argv in (("ip", "-j", "-4", "route", "show", "table", "all"), ("ip", "-j", "-4", "addr", "show")):
        for entry in json.loads(_run(*argv) or "[]"):
            addresses = [f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info", [])]
            candidates = [entry.get("dst"), *addresses]
            for candidate in candidates:
                if candidate and candidate != "default":
                    with contextlib.suppress(ValueError):
                        used.append(ipaddress.IPv4Network(candidate, strict=False))
    return used


def _allocate_slot(directory: Path) -> _Slot:
    """Pick a free 10.213.N.0/24, register it, and create its namespace and veth pair."""
    with _registry_lock():
        used = _used_networks()
        existing = set(_run("ip", "netns", "list").split())
        for index in range(256):
            slot = _Slot(index)
            record = REGISTRY / f"{slot.netns}.json"
            if record.exists() or slot.netns in existing or any(n.overlaps(slot.network) for n in used):
                continue
            record.write_text(
                json.dumps(
                    {"owner_pid": os.getpid(), "owner_start": _start_time(os.getpid()), "dir": str(directory)}
                )
            )
            try:
                _run("ip", "netns", "add", slot.netns)
                _run(
                    "ip",
                    "-batch",
                    "-",
                    stdin=(
                        f"link add {slot.host_if} type veth peer name eth0 netns {slot.netns}\n"
                        f"addr add {slot.gateway}/24 dev {slot.host_if}\n"
                        f"link set {slot.host_if} up\n"
                    ),
                )
                platform_routes = "".join(f"route add unreachable {a}\n" for a in PLATFORM_ADDRESSES)
                _run(
                    "ip",
                    "-n",
                    slot.netns,
                    "-batch",
                    "-",
                    stdin=(
                        "link set lo up\n"
                        f"addr add {slot.ip}/24 dev eth0\n"
                        "link set eth0 up\n"
                        f"route add default via {slot.gateway}\n" + platform_routes
                    ),
                )
            except BaseException:
                _remove(slot, None)
                raise
            return slot
    raise SandboxError(f"no free 10.{SECOND_OCTET}.N.0/24 left for another sandbox")


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory.resolve()) + "/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted((p for p in points if (p + "/").startswith(prefix)), key=len, reverse=True)


def _remove(slot: _Slot, directory: Path | None) -> None:
    """Remove a sandbox's mounts, files, veth, namespace and registry record (whatever exists)."""
    if directory is not None and directory.exists():
        for point in _mounts_under(directory):
            _run("umount", "--lazy", point)
        shutil.rmtree(directory, ignore_errors=True)
    if slot.index < 0:
        return
    if Path(f"/sys/class/net/{slot.host_if}").exists():
        _run("ip", "link", "del", slot.host_if)
    if Path(f"/run/netns/{slot.netns}").exists():
        _run("ip", "netns", "del", slot.netns)
    (REGISTRY / f"{slot.netns}.json").unlink(missing_ok=True)


def cleanup_stale() -> list[str]:
    """Remove what sandboxes of dead processes left behind (processes, mounts, veths, namespaces).
    Sandboxes whose owner still runs are left alone. Returns the namespaces removed."""
    removed = []
    with _registry_lock():
        names = set(_run("ip", "netns", "list").split()) | {p.stem for p in REGISTRY.glob(f"{PREFIX}*.json")}
        links = {p.name for p in Path("/sys/class/net").iterdir()}
        names |= {n[:-1] for n in links if n.startswith(PREFIX) and n.endswith("h")}
        for name in sorted(n for n in names if re.fullmatch(f"{PREFIX}[0-9]+", n)):
            record_path = REGISTRY / f"{name}.json"
            record = json.loads(record_path.read_text()) if record_path.exists() else {}
            owner = record.get("owner_pid")
            if owner is not None and _start_time(owner) == record.get("owner_start"):
                continue
            if Path(f"/run/netns/{name}").exists():
                deadline = time.monotonic() + 10
                while pids := _run("ip", "netns", "pids", name).split():
                    for pid in pids:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                    if time.monotonic() > deadline:
                        raise SandboxError(f"processes {pids} in stale namespace {name} survived SIGKILL")
                    time.sleep(0.01)
            directory = Path(record["dir"]) if "dir" in record else None
            _remove(_Slot(int(name.removeprefix(PREFIX))), directory)
            removed.append(name)
    return removed
