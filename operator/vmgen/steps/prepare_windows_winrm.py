"""Transport WinRM of the Windows guest step: the connection to the guest's WinRM listener.

Reads the kubernetes.io/basic-auth Secret and the CA Secret named in spec.winrm (typed SecretReader
methods, so a missing key fails with the key named and no value shown) and opens the WinRM guest port.
Sysprep runs with /quit here: the session answers, and the operator deallocates the VM itself (a
/shutdown would kill the WinRM session mid-call, and processes of a closing session die with it).
"""

from __future__ import annotations

from vmgen.domain import ports
from vmgen.domain.windows_spec import WinRmConnection
from vmgen.steps.base import Pass

__all__ = ["SHUTS_DOWN", "open_guest", "read_secrets"]

SHUTS_DOWN = False


async def read_secrets(p: Pass) -> WinRmConnection:
    winrm = p.spec.windows.winrm
    assert winrm is not None  # windows_plan.validate fails a WinRM job without spec.winrm
    namespace = p.resource.namespace
    username, password = await p.ports.secrets.basic_auth(namespace, winrm.credentials_secret)
    ca_pem = await p.ports.secrets.ca_bundle(namespace, winrm.ca_secret) if winrm.ca_secret else None
    return WinRmConnection(
        host=winrm.host,
        port=winrm.port,
        tls=winrm.tls,
        auth=winrm.auth,
        username=username,
        password=password,
        ca_pem=ca_pem,
        insecure_skip_tls_verify=winrm.insecure_skip_tls_verify,
    )


async def open_guest(p: Pass) -> ports.WindowsGuest:
    return p.ports.windows.winrm(await read_secrets(p))
