"""What a VM GET answered, as vmgen's model: power state, OS state, agent, extensions and disk layout.

Pure reading of azure-mgmt-compute models (no I/O), apart from adapters/azure.py so that the client
module keeps to the calls. Trap avoided: the SDK's enums mix in str but print as `OsType.LINUX` on
Python 3.11, so values are read through `.value`.
"""

from __future__ import annotations

from typing import Any

from azure.mgmt.compute import models as azmodels

from vmgen.domain import model


def observation(ref: model.VmRef, vm: azmodels.VirtualMachine) -> model.VmObservation:
    props = vm.properties
    view = props.instance_view if props else None
    codes = [status.code or "" for status in (view.statuses or [])] if view else []
    power = next((code.removeprefix("PowerState/") for code in codes if code.startswith("PowerState/")), "")
    agent = view.vm_agent if view else None
    os_disk = props.storage_profile.os_disk if props and props.storage_profile else None
    os_type = getattr(os_disk.os_type, "value", os_disk.os_type) if os_disk else None
    return model.VmObservation(
        id=model.VmResourceId(vm.id) if vm.id else ref.resource_id,
        os_type={o.value.lower(): o for o in model.OsType}.get(str(os_type).lower()),
        power_state={p.value: p for p in model.PowerState}.get(power.lower(), model.PowerState.UNKNOWN),
        generalized=any(code.lower() == "osstate/generalized" for code in codes),
        agent_ready=bool(agent and any(s.display_status == "Ready" for s in agent.statuses or [])),
        extensions=extensions(vm),
        **layout(vm),
    )


def extensions(vm: azmodels.VirtualMachine) -> tuple[str, ...]:
    """`<publisher>.<type>` of the VM's extensions (the `resources` of a VM GET)."""
    found = []
    for extension in vm.resources or []:
        props = extension.properties
        if props is not None and props.publisher and props.type:
            found.append(f"{props.publisher}.{props.type}")
    return tuple(found)


def layout(vm: azmodels.VirtualMachine) -> dict[str, Any]:
    """Where the VM is and what its disks are: what snapshots and images are made from."""
    props = vm.properties
    storage = props.storage_profile if props else None
    os_disk = storage.os_disk if storage else None
    view = props.instance_view if props else None
    security = props.security_profile if props else None
    generation = getattr(view, "hyper_v_generation", None) if view else None
    return {
        "location": vm.location or "",
        "os_disk_id": (os_disk.managed_disk.id or "") if os_disk and os_disk.managed_disk else "",
        "data_disks": tuple(
            (d.lun, d.managed_disk.id or "") for d in (storage.data_disks or []) if d.managed_disk
        )
        if storage
        else (),
        "hyper_v_generation": str(getattr(generation, "value", generation) or ""),
        "security_type": str(getattr(security.security_type, "value", security.security_type) or "Standard")
        if security and security.security_type
        else "Standard",
    }
