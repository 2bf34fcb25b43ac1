"""The simulator's world: subscriptions, resource groups, VMs, images and the operations running on them.

One `World` is shared by the HTTP handlers (in the simulator's own event loop thread) and by the Python
control surface (called from tests, any thread), so every read and write goes through `World.lock`.
Guests are never called under the lock: their callbacks are coroutines that may take seconds.

Azure treats resource names case-insensitively (`RG-Images` and `rg-images` are one group) but echoes
them as created; keys here are lower-cased, bodies keep the original spelling.

A VM's observable state follows Azure's instance view: `PowerState/<state>`, `OSState/generalized` only
once generalized, `ProvisioningState/updating` while an operation runs, and a VM agent that reports
"Ready" only while the VM runs and its agent is up (a deallocated VM reports no agent at all).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vmgen_testbed.arm.faults import FaultQueue, names_vm
from vmgen_testbed.arm.lro import Operation, iso
from vmgen_testbed.guest import Guest

__all__ = [
    "DELETABLE",
    "LONG_RUNNING",
    "POWER_OPERATIONS",
    "POWER_STATES",
    "RequestRecord",
    "Vm",
    "World",
    "latency_key",
]

POWER_STATES = ("running", "stopping", "stopped", "deallocating", "deallocated", "starting")
POWER_OPERATIONS = {
    "powerOff": ("stopping", "stopped"),
    "deallocate": ("deallocating", "deallocated"),
    "start": ("starting", "running"),
}  # operation -> (while running, when done)
# Resources whose DELETE is a long-running operation (simulator operation `delete<kind>`).
DELETABLE = ("Snapshot", "Image", "GalleryImageVersion", "Disk", "NetworkInterface", "Vm")
LONG_RUNNING = (
    *POWER_OPERATIONS,
    "runCommand",
    "createImage",
    "createSnapshot",
    "createGallery",
    "createGalleryImage",
    "createGalleryImageVersion",
    "createDisk",
    "createNetworkInterface",
    "createVirtualNetwork",
    "createVm",
    *(f"delete{kind}" for kind in DELETABLE),
)
DEFAULT_OPERATION_SECONDS = 0.2
READS_PER_HOUR, WRITES_PER_HOUR = 12000, 1200


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    operation: str  # simulator operation name ("get", "powerOff", "operationStatus", "token", ...)
    status: int | None  # None: the connection was dropped without an answer
    response_body: Any  # parsed JSON, or None when the response had no body
    timestamp: float
    api: str = "arm"  # "arm" or "entra"
    request_body: Any = None  # parsed JSON of ARM requests; never recorded for Entra (it holds secrets)
    response_headers: dict[str, str] = field(default_factory=dict)  # e.g. Azure-AsyncOperation, Retry-After
    connection: str = ""  # the client's "host:port": one value per TCP (and TLS) connection

    def is_for_vm(self, vm_name: str) -> bool:
        """The request is about exactly this VM (not `vm-12` when asked for `vm-1`)."""
        return names_vm(self.path, vm_name)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "operation": self.operation,
            "status": self.status,
            "response_body": self.response_body,
            "timestamp": self.timestamp,
            "api": self.api,
            "request_body": self.request_body,
            "response_headers": self.response_headers,
        }


@dataclass
class Vm:
    subscription_id: str
    resource_group: str
    name: str
    os_type: str
    location: str
    power_state: str
    generalized: bool
    agent_ready: bool
    guest: Guest | None = None
    vm_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    disk_suffix: str = field(default_factory=lambda: uuid.uuid4().hex)
    operation: str | None = None  # the power operation in progress on this VM
    running_command: bool = False  # Run Command runs beside power operations, one at a time
    security_type: str | None = None  # securityProfile.securityType: None (Standard), TrustedLaunch, ...
    hyper_v_generation: str = "V2"
    vm_size: str = "Standard_D2s_v5"
    attached_os_disk: str | None = None  # a VM created from disks names its own OS disk id
    data_disks: list[tuple[int, str]] = field(default_factory=list)  # (lun, managed disk id)
    nic: str | None = None  # the NIC's id; seeded VMs use "<vm>-nic" in their resource group
    tags: dict[str, str] = field(default_factory=dict)
    failed: bool = False  # its creation ended Failed (Azure keeps such a VM until it is deleted)
    extensions: tuple[tuple[str, str], ...] = ()  # (publisher, type) of each VM extension
    extension_settings: dict[str, dict[str, str]] = field(default_factory=dict)  # type -> public settings

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.Compute/virtualMachines/{self.name}"
        )

    @property
    def os_disk_name(self) -> str:
        if self.attached_os_disk is not None:
            return self.attached_os_disk.rsplit("/", 1)[-1]
        return f"{self.name}_OsDisk_1_{self.disk_suffix}"

    @property
    def os_disk_id(self) -> str:
        return self.attached_os_disk or (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.Compute/disks/{self.os_disk_name}"
        )

    @property
    def nic_id(self) -> str:
        return self.nic or (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Network/networkInterfaces/{self.name}-nic"
        )

    def disk_ids(self) -> list[str]:
        return [self.os_disk_id, *(disk for _, disk in self.data_disks)]

    def body(self, *, with_instance_view: bool) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "vmId": self.vm_id,
            "hardwareProfile": {"vmSize": self.vm_size},
            "storageProfile": {
                "osDisk": {
                    "osType": self.os_type,
                    "name": self.os_disk_name,
                    "createOption": "Attach" if self.attached_os_disk else "FromImage",
                    "diskSizeGB": 30,
                    "managedDisk": {"id": self.os_disk_id, "storageAccountType": "Premium_LRS"},
                },
                "dataDisks": [
                    {
                        "lun": lun,
                        "name": disk.rsplit("/", 1)[-1],
                        "createOption": "Attach",
                        "managedDisk": {"id": disk, "storageAccountType": "Premium_LRS"},
                    }
                    for lun, disk in self.data_disks
                ],
            },
            "osProfile": {"computerName": self.name, "adminUsername": "azureuser"},
            "networkProfile": {"networkInterfaces": [{"id": self.nic_id, "properties": {"primary": True}}]},
            "provisioningState": self.provisioning_state,
            "timeCreated": iso(self.created),
        }
        if self.security_type is not None:
            properties["securityProfile"] = {
                "securityType": self.security_type,
                "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
            }
        if with_instance_view:
            properties["instanceView"] = self.instance_view()
        body: dict[str, Any] = {
            "name": self.name,
            "id": self.id,
            "type": "Microsoft.Compute/virtualMachines",
            "location": self.location,
            "tags": dict(self.tags),
            "properties": properties,
        }
        if self.extensions:  # Azure lists a VM's extensions as its child `resources`
            body["resources"] = [
                {
                    "id": f"{self.id}/extensions/{kind}",
                    "name": kind,
                    "type": "Microsoft.Compute/virtualMachines/extensions",
                    "location": self.location,
                    "properties": {
                        "publisher": publisher,
                        "type": kind,
                        "typeHandlerVersion": "2.2",
                        "provisioningState": "Succeeded",
                        **(
                            {"settings": dict(self.extension_settings[kind])}
                            if kind in self.extension_settings
                            else {}
                        ),
                    },
                }
                for publisher, kind in self.extensions
            ]
        return body

    @property
    def provisioning_state(self) -> str:
        if self.failed:
            return "Failed"
        return {None: "Succeeded", "create": "Creating", "delete": "Deleting"}.get(self.operation, "Updating")

    def instance_view(self) -> dict[str, Any]:
        now = iso(datetime.now(UTC))
        provisioning = (
            {"code": "ProvisioningState/updating", "level": "Info", "displayStatus": "Updating"}
            if self.operation
            else {
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "time": now,
            }
        )
        statuses = [
            provisioning,
            {
                "code": f"PowerState/{self.power_state}",
                "level": "Info",
                "displayStatus": f"VM {self.power_state}",
            },
        ]
        if self.generalized:
            statuses.append(
                {"code": "OSState/generalized", "level": "Info", "displayStatus": "VM generalized"}
            )
        view: dict[str, Any] = {
            "platformUpdateDomain": 0,
            "platformFaultDomain": 0,
            "hyperVGeneration": self.hyper_v_generation,
            "statuses": statuses,
        }
        if self.power_state != "deallocated":
            view["computerName"] = self.name
            view["vmAgent"] = {
                "vmAgentVersion": "2.12.0.2" if self.agent_reporting else "Unknown",
                "statuses": [self._agent_status(now)],
                "extensionHandlers": [],
            }
        return view

    @property
    def agent_reporting(self) -> bool:
        return self.agent_ready and self.power_state == "running"

    def _agent_status(self, now: str) -> dict[str, Any]:
        if self.agent_reporting:
            return {
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Ready",
                "message": "Guest Agent is running",
                "time": now,
            }
        return {
            "code": "ProvisioningState/Unavailable",
            "level": "Warning",
            "displayStatus": "Not Ready",
            "message": "VM Agent is unresponsive.",
            "time": now,
        }

    def state(self) -> dict[str, Any]:
        """The control surface's view (not an Azure shape)."""
        return {
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "name": self.name,
            "id": self.id,
            "osType": self.os_type,
            "location": self.location,
            "powerState": self.power_state,
            "generalized": self.generalized,
            "agentReady": self.agent_ready,
            "hasGuest": self.guest is not None,
            "operation": self.operation,
            "securityType": self.security_type,
            "hyperVGeneration": self.hyper_v_generation,
        }


def latency_key(operation: str, vm: str | None) -> str:
    """`World.latency`'s key: the operation, or `operation@vm` for a latency of one VM only."""
    return operation if vm is None else f"{operation}@{vm.lower()}"


class World:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.resource_groups: dict[str, dict[str, str]] = {}  # subscription (lower) -> {rg lower: rg}
        self.vms: dict[tuple[str, str, str], Vm] = {}
        self.resources: dict[str, dict[str, Any]] = {}  # lower-cased resource id -> body
        self.operations: dict[str, Operation] = {}
        self.latency: dict[str, float] = {}
        # (operation, resource name or None) -> how many matching requests still go through: see pause()
        self.holds: dict[tuple[str, str | None], int] = {}
        self.faults = FaultQueue()
        self.log: list[RequestRecord] = []
        # lower-cased snapshot/disk id -> the guest filesystem state it holds (a tar made by the guest)
        self.disk_contents: dict[str, Path] = {}
        self.unavailable_sizes: set[str] = set()  # VM sizes that answer SkuNotAvailable (lower-cased)
        self.cores_quota: dict[tuple[str, str], int] = {}  # (subscription, location) lower -> vCPU limit
        self._quota: dict[tuple[str, bool, int], int] = {}

    def ensure_resource_group(self, subscription_id: str, resource_group: str) -> None:
        with self.lock:
            groups = self.resource_groups.setdefault(subscription_id.lower(), {})
            groups.setdefault(resource_group.lower(), resource_group)

    def has_subscription(self, subscription_id: str) -> bool:
        with self.lock:
            return subscription_id.lower() in self.resource_groups

    def has_resource_group(self, subscription_id: str, resource_group: str) -> bool:
        with self.lock:
            return resource_group.lower() in self.resource_groups.get(subscription_id.lower(), {})

    def vm(self, subscription_id: str, resource_group: str, name: str) -> Vm | None:
        with self.lock:
            return self.vms.get((subscription_id.lower(), resource_group.lower(), name.lower()))

    def add_vm(self, vm: Vm) -> None:
        with self.lock:
            self.ensure_resource_group(vm.subscription_id, vm.resource_group)
            self.vms[(vm.subscription_id.lower(), vm.resource_group.lower(), vm.name.lower())] = vm

    def vm_by_id(self, resource_id: str) -> Vm | None:
        with self.lock:
            return next((vm for vm in self.vms.values() if vm.id.lower() == resource_id.lower()), None)

    def vm_by_disk(self, disk_id: str) -> Vm | None:
        """The VM that has this disk attached (OS or data disk)."""
        with self.lock:
            return next(
                (vm for vm in self.vms.values() if disk_id.lower() in (d.lower() for d in vm.disk_ids())),
                None,
            )

    def remove_vm(self, vm: Vm) -> None:
        with self.lock:
            self.vms.pop((vm.subscription_id.lower(), vm.resource_group.lower(), vm.name.lower()), None)

    def seconds(self, operation: str, vm: str | None = None) -> float:
        """The latency of `operation`: the one set for this VM, else the one set for all, else the default."""
        with self.lock:
            default = DEFAULT_OPERATION_SECONDS if operation in LONG_RUNNING else 0.0
            if vm is not None and (key := latency_key(operation, vm)) in self.latency:
                return self.latency[key]
            return self.latency.get(operation, default)

    def held(self, operation: str, path: str, *, arriving: bool = False) -> bool:
        """Whether a hold keeps `operation` on the resource at `path` from going on (a hold names the
        operation and, optionally, one segment of the path: a VM's, a snapshot's, a gallery's name).
        `arriving`: a new request, which uses up one of the hold's pass-throughs if it has any left."""
        segments = path.lower().split("/")
        with self.lock:
            for key, passes in self.holds.items():
                operation_held, name = key
                if operation_held == operation and (name is None or name in segments):
                    if arriving and passes > 0:
                        self.holds[key] = passes - 1
                        return False
                    return passes == 0
            return False

    async def pause(self, operation: str, *, vm: str | None = None, path: str = "") -> None:
        """Wait out the operation's latency, then for as long as a hold names it: a test holds a request
        in flight (or an operation InProgress) until the moment it chooses, however loaded the machine."""
        await asyncio.sleep(self.seconds(operation, vm))
        if not self.held(operation, path, arriving=True):
            return
        # Holds are set and released from other threads (tests), which an asyncio.Event cannot serve.
        while self.held(operation, path):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def remaining_quota(self, subscription_id: str, *, write: bool) -> int:
        """ARM's per-subscription hourly budget, as reported in x-ms-ratelimit-remaining-*."""
        with self.lock:
            key = (subscription_id.lower(), write, int(time.time() // 3600))
            self._quota[key] = used = self._quota.get(key, 0) + 1
            return max((WRITES_PER_HOUR if write else READS_PER_HOUR) - used, 0)
