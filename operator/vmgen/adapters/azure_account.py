"""`ports.Compute` as the workflow uses it: VMs and Run Command (`azure.AzureCompute`), capture
(`azure_images.AzureImages`) and copies (`azure_copy.AzureCopies`) on one `AzureSession`, so a resource
holds one credential and one set of
clients whatever its steps need.
"""

from __future__ import annotations

from vmgen.adapters import azure, azure_copy, azure_images
from vmgen.domain import ports

__all__ = ["AccountFactory", "AzureAccount"]


class AzureAccount(azure_copy.AzureCopies, azure_images.AzureImages, azure.AzureCompute):
    def __init__(self, settings: azure.AzureSettings, credentials: ports.AzureCredentials | None) -> None:
        azure.AzureCompute.__init__(self, settings, credentials)
        azure_images.AzureImages.__init__(self, self.session)
        azure_copy.AzureCopies.__init__(self, self.session)


class AccountFactory:
    """`ports.ComputeFactory`: one `AzureAccount` per credential; use it with `async with`."""

    def __init__(self, settings: azure.AzureSettings) -> None:
        self._settings = settings

    def __call__(self, credentials: ports.AzureCredentials | None) -> AzureAccount:
        return AzureAccount(self._settings, credentials)
