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


ARM = "https://arm.local/subscriptions/s"
MORE_ROWS = [
    pytest.param("HEAD", VM, "Microsoft.Compute/virtualMachines/read", id="a HEAD reads"),
    pytest.param(
        "get", VM, "Microsoft.Compute/virtualMachines/read", id="a lower-case method is the same verb"
    ),
    pytest.param("PATCH", VM, "Microsoft.Compute/virtualMachines/write", id="a PATCH writes"),
    pytest.param(
        "DELETE", VM + "/", "Microsoft.Compute/virtualMachines/delete", id="a DELETE with a trailing /"
    ),
    pytest.param(
        "PURGE", VM, "Microsoft.Compute/virtualMachines/action", id="an unknown method is an action"
    ),
    pytest.param(
        "POST",
        ARM + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines",
        "Microsoft.Compute/virtualMachines/action",
        id="a POST to a collection is an action on its type",
    ),
    pytest.param(
        "PUT",
        ARM + "/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i/versions/1.0.0",
        "Microsoft.Compute/galleries/images/versions/write",
        id="a nested type keeps every level",
    ),
    pytest.param(
        "GET",
        ARM + "/resourceGroups/rg",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        id="a group",
    ),
    pytest.param(
        "GET", "https://arm.local/tenants", "Microsoft.Resources/tenants/read", id="the tenant list"
    ),
    pytest.param("GET", ARM + "/providers/Microsoft.Compute", "other", id="a provider without a type"),
    pytest.param("GET", "https://arm.local/", "other", id="the root"),
]


@pytest.mark.parametrize(("method", "url", "action"), MORE_ROWS)
def test_each_verb_and_shape_of_path_maps_to_its_action(method: str, url: str, action: str) -> None:
    assert azure_actions.action_for(method, url) == action


EDGE_ROWS = [
    pytest.param(
        "GET",
        ARM + "/providers/",
        "Microsoft.Resources/subscriptions/providers/read",
        id="the provider list, with a trailing slash",
    ),
    pytest.param(
        "PUT",
        VM + "/providers/Microsoft.Authorization/locks/l",
        "Microsoft.Authorization/locks/write",
        id="an extension resource is named by its own provider",
    ),
]


@pytest.mark.parametrize(("method", "url", "action"), EDGE_ROWS)
def test_the_last_provider_of_a_path_names_the_action(method: str, url: str, action: str) -> None:
    assert azure_actions.action_for(method, url) == action
