"""ARM requests named by the RBAC action they need (metrics labels, docs/azure-role.md)."""

from __future__ import annotations

import pytest

from vmgen.domain import azure_actions

VM = "https://arm.local/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web-01"

ROWS = [
    pytest.param(
        "GET",
        VM + "?$expand=instanceView&api-version=2024-07-01",
        "Microsoft.Compute/virtualMachines/read",
        id="a VM read",
    ),
    pytest.param(
        "GET", VM + "/instanceView", "Microsoft.Compute/virtualMachines/instanceView/read", id="a child view"
    ),
    pytest.param(
        "POST", VM + "/deallocate", "Microsoft.Compute/virtualMachines/deallocate/action", id="deallocate"
    ),
    pytest.param(
        "POST", VM + "/generalize", "Microsoft.Compute/virtualMachines/generalize/action", id="generalize"
    ),
    pytest.param(
        "POST", VM + "/runCommand", "Microsoft.Compute/virtualMachines/runCommand/action", id="run command"
    ),
    pytest.param(
        "GET",
        "https://arm.local/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/0a1b",
        "Microsoft.Compute/locations/operations/read",
        id="an operation poll",
    ),
    pytest.param(
        "PUT",
        "https://arm.local/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/snapshots/x",
        "Microsoft.Compute/snapshots/write",
        id="a snapshot write",
    ),
    pytest.param(
        "GET",
        "https://arm.local/subscriptions",
        "Microsoft.Resources/subscriptions/read",
        id="the subscription list",
    ),
    pytest.param("GET", "https://arm.local/metadata/endpoints", "other", id="not an ARM resource"),
]


@pytest.mark.parametrize(("method", "url", "action"), ROWS)
def test_each_request_maps_to_its_action(method: str, url: str, action: str) -> None:
    assert azure_actions.action_for(method, url) == action
