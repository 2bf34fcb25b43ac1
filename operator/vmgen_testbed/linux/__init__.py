"""Debian guest sandboxes: a real OpenSSH + Azure Linux Agent per simulated VM.

`rootfs` builds and caches the shared read-only Debian tree; `sandbox` runs one isolated guest per VM
(overlayfs, network namespace + veth, sshd in its own UTS/IPC/mount/PID namespaces) and implements the
simulator's `Guest` protocol.
"""
