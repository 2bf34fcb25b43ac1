"""The kubernetes Python client, configured from the testbed kubeconfig, creates, patches status, watches.

The client reads `KUBECONFIG` when it is imported, so the config is loaded explicitly from the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch

from tests.testbed.kube.widgets import GROUP, PLURAL, VERSION, widget_manifest
from vmgen_testbed.kube import ControlPlane

pytestmark = pytest.mark.usefixtures("widget_crd")


@pytest.fixture
def api(control_plane: ControlPlane) -> Iterator[client.CustomObjectsApi]:
    api_client = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    with api_client:
        yield client.CustomObjectsApi(api_client)


def create(api: client.CustomObjectsApi, manifest: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, manifest)
    return body


def test_the_client_creates_an_object_and_reads_it_back(api: client.CustomObjectsApi) -> None:
    manifest = widget_manifest(owner="team-c")
    name = manifest["metadata"]["name"]

    created = create(api, manifest)
    read = api.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)

    assert created["metadata"]["uid"] == read["metadata"]["uid"]
    assert read["spec"]["owner"] == "team-c"


def test_status_is_written_through_the_status_subresource_only(api: client.CustomObjectsApi) -> None:
    name = create(api, widget_manifest())["metadata"]["name"]

    through_main = api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, {"status": {"phase": "Ignored"}}
    )
    through_status = api.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, name, {"status": {"phase": "Running"}, "spec": {"maxReplicas": 9}}
    )

    assert "status" not in through_main
    assert through_status["status"] == {"phase": "Running"}
    assert through_status["spec"]["maxReplicas"] == 3
    assert through_status["metadata"]["generation"] == 1


def test_a_watch_receives_the_object_as_added_then_its_status_change_as_modified(
    api: client.CustomObjectsApi,
) -> None:
    name = create(api, widget_manifest())["metadata"]["name"]
    events = watch.Watch().stream(
        api.list_namespaced_custom_object,
        GROUP,
        VERSION,
        "default",
        PLURAL,
        field_selector=f"metadata.name={name}",
        timeout_seconds=30,
    )

    added = next(events)
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, name, {"status": {"phase": "Done"}}
    )
    modified = next(events)
    events.close()

    assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", name)
    assert (modified["type"], modified["object"]["status"]) == ("MODIFIED", {"phase": "Done"})
