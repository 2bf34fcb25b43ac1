"""The Azure CLI as a second, independent client of the ARM simulator.

The SDK is what the operator uses, but a person debugging a VM reaches for `az`: the simulator is only
believable if `az login --service-principal`, `az vm show`, `az vm get-instance-view`, `az vm deallocate`
and `az vm generalize` work against it unchanged. `ensure_azure_cli()` installs the pinned azure-cli into
its own virtualenv under `cache_dir()/azure-cli-<version>/` (about 700 MB and a few minutes the first
time; kept apart from the project's venv because its pins clash with the operator's azure packages), and
`AzureCli` runs it against one simulator with a private configuration directory.

Traps avoided:
- A virtualenv cannot be renamed (its scripts hold absolute paths), so it is built in place and counts
  as installed only once the `.installed` stamp exists; an `flock` keeps two sessions from installing at
  once, and a half-built venv left by a killed install is removed first.
- The CLI trusts the simulator's CA through `REQUESTS_CA_BUNDLE` (requests and MSAL both read it), never
  by disabling verification (`AZURE_CLI_DISABLE_CONNECTION_VERIFICATION`).
- MSAL asks login.microsoftonline.com to validate an authority it does not know ("instance discovery"):
  `AZURE_CORE_INSTANCE_DISCOVERY=false` keeps every request on loopback; telemetry and the survey prompt
  are off for the same reason.
- `az cloud register --endpoint-resource-manager <base>` reads the rest of the cloud from the simulator's
  `/metadata/endpoints`; the base URL is passed without a trailing slash because the CLI appends the path.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmgen_testbed.paths import cache_dir

__all__ = ["AZURE_CLI_VERSION", "AzureCli", "CliResult", "ensure_azure_cli"]

AZURE_CLI_VERSION = "2.91.0"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def ensure_azure_cli(version: str = AZURE_CLI_VERSION) -> Path:
    """The `az` executable of the pinned azure-cli, installed the first time."""
    home = cache_dir() / f"azure-cli-{version}"
    az, stamp = home / "venv" / "bin" / "az", home / ".installed"
    if stamp.exists() and os.access(az, os.X_OK):
        return az
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be installing it right now
        if stamp.exists() and os.access(az, os.X_OK):
            return az
        print(
            f"[vmgen azure-cli] installing azure-cli {version} into {home} (a few minutes, once) ...",
            flush=True,
        )
        shutil.rmtree(home / "venv", ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
        subprocess.run(
            [str(home / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", f"azure-cli=={version}"],
            check=True,
        )
        stamp.touch()
    return az


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class AzureCli:
    """`az` with its own AZURE_CONFIG_DIR, trusting `ca_bundle`, talking only to loopback."""

    def __init__(self, az: Path, *, config_dir: Path, ca_bundle: str) -> None:
        self.az = az
        self.config_dir = config_dir
        self.env = {
            **{key: value for key, value in os.environ.items() if key not in _PROXY_VARIABLES},
            "AZURE_CONFIG_DIR": str(config_dir),
            "REQUESTS_CA_BUNDLE": ca_bundle,
            "AZURE_CORE_INSTANCE_DISCOVERY": "false",
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def run(self, *arguments: str, timeout: float = 120.0) -> CliResult:
        done = subprocess.run(
            [str(self.az), *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    def ok(self, *arguments: str, timeout: float = 120.0) -> Any:
        """Run a command that must succeed; its JSON output (None when it printed nothing)."""
        result = self.run(*arguments, "--output", "json", timeout=timeout)
        if result.returncode != 0:
            # only the command's name: its arguments may hold a secret (az login --password)
            raise AssertionError(
                f"az {' '.join(arguments[:2])} failed ({result.returncode}):\n{result.stderr}"
            )
        return result.json() if result.stdout.strip() else None

    def register_cloud(self, name: str, resource_manager: str) -> None:
        """Register the simulator as a cloud, its endpoints read from its metadata, and switch to it."""
        self.ok(
            "cloud", "register", "--name", name, "--endpoint-resource-manager", resource_manager.rstrip("/")
        )
        self.ok("cloud", "set", "--name", name)

    def login_service_principal(self, *, tenant_id: str, client_id: str, client_secret: str) -> Any:
        # the secret goes as an argument, as the docs show it; it never reaches a log (the simulator keeps
        # no Entra request body and this helper prints nothing of the command line)
        return self.ok(
            "login",
            "--service-principal",
            "--username",
            client_id,
            "--password",
            client_secret,
            "--tenant",
            tenant_id,
        )
