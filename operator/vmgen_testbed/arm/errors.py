"""Azure's error responses, with the codes and the wording the real service uses.

The operator classifies failures by `error.code` and shows `error.message` to people, so a simulator that
answered "409 conflict" would test nothing. Every refusal the simulator makes is built here, in one
place, with Azure's exact text where it is documented or commonly observed (the generalize, start and
Create Image refusals, ResourceNotFound with its aka.ms link, AADSTS7000215 for a wrong secret, the
managed image of a Trusted Launch VM, the Hypervisor generation conflict of a gallery image version, a
subnet a NIC references that does not exist, SkuNotAvailable). Where Azure's wording is not on record
(a security type or OS state that differs from the image definition's, a disk or NIC in use), the text
follows the shape of its recorded siblings; those builders say so.

Trap avoided: ARM bodies are `{"error": {"code", "message", "target"?}}` (CloudError), while Entra's are
OAuth2 `{"error": "invalid_client", "error_description": ...}`; the two are never mixed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


class ArmError(Exception):
    """A refusal that the simulator answers with Azure's CloudError body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.detail()}

    def detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            detail["target"] = self.target
        return detail


def missing_authorization() -> ArmError:
    return ArmError(
        401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
    )


def invalid_token() -> ArmError:
    return ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")


def missing_api_version() -> ArmError:
    return ArmError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def subscription_not_found(subscription_id: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


def resource_group_not_found(resource_group: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")


def resource_not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def parent_not_found(parent: str) -> ArmError:
    return ArmError(
        404,
        "ParentResourceNotFound",
        f"Can not perform requested operation on nested resource. Parent resource '{parent}' not found.",
    )


def invalid_resource_type(api_version: str) -> ArmError:
    return ArmError(
        404,
        "InvalidResourceType",
        "The resource type could not be found in the namespace 'Microsoft.Compute' for api "
        f"version '{api_version}'.",
    )


def invalid_parameter(message: str, target: str) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target=target)


def generalize_while_running(vm: str) -> ArmError:
    return ArmError(
        409,
        "OperationNotAllowed",
        f"Operation 'generalize' is not allowed on VM '{vm}' since the VM is running. Please "
        "power off explicitly in case you shut down the VM from inside the guest operating "
        "system.",
    )


def operation_on_generalized_vm(operation: str, vm: str) -> ArmError:
    return ArmError(
        409,
        "OperationNotAllowed",
        f"Operation '{operation}' is not allowed on VM '{vm}' since the VM is generalized.",
    )


def operation_on_stopped_vm(operation: str, vm: str, power_state: str) -> ArmError:
    reason = (
        "the VM is deallocated or marked to be deallocated"
        if power_state.startswith("dealloc")
        else "the VM is not running"
    )
    return ArmError(
        409, "OperationNotAllowed", f"Operation '{operation}' is not allowed on VM '{vm}' since {reason}."
    )


def another_operation_in_progress(operation: str, vm: str, running: str) -> ArmError:
    return ArmError(
        409,
        "AnotherOperationInProgress",
        f"Operation '{operation}' on VM '{vm}' cannot be performed because another operation "
        f"'{running}' is in progress on it. Retry after the operation completes.",
    )


def agent_not_reporting(vm: str) -> ArmError:
    return ArmError(
        409,
        "VMAgentStatusCommunicationError",
        f"VM '{vm}' has not reported status for VM agent or extensions. Verify that the OS is up "
        "and healthy, the VM has a running VM agent, and that it can establish outbound "
        "connections to Azure storage. Please refer to https://aka.ms/vmextensionlinuxtroubleshoot "
        "for additional VM agent troubleshooting information.",
    )


def image_requires_generalized(vm: str, operation: str = "Create Image") -> ArmError:
    return ArmError(
        409,
        "OperationNotAllowed",
        f"The operation '{operation}' requires the Virtual Machine '{vm}' to be Generalized.",
    )


def managed_image_of_security_type(security_type: str) -> ArmError:
    return ArmError(
        409,
        "OperationNotAllowed",
        "Creation of managed images are not supported for virtual machine with "
        f"{security_type} security type.",
    )


def hyper_v_generation_differs(source_id: str, source: str, definition: str) -> ArmError:
    return ArmError(
        409,
        "Conflict",
        f"The resource with id '{source_id}' has a different Hypervisor generation ['{source}'] than "
        f"the parent gallery image Hypervisor generation ['{definition}'].",
    )


def security_type_differs(source_id: str, source: str, definition: str) -> ArmError:
    """Modeled on the Hypervisor generation conflict (Azure's exact text is not on record)."""
    return ArmError(
        409,
        "Conflict",
        f"The resource with id '{source_id}' has a different security type ['{source}'] than the "
        f"parent gallery image security type ['{definition}'].",
    )


def os_state_differs(source_id: str, definition: str) -> ArmError:
    """A generalized source under a Specialized definition (modeled, see above)."""
    return ArmError(
        409,
        "Conflict",
        f"The resource with id '{source_id}' is Generalized but the parent gallery image OS state is "
        f"['{definition}'].",
    )


def os_type_differs(source_id: str, source: str, definition: str) -> ArmError:
    return ArmError(
        409,
        "Conflict",
        f"The resource with id '{source_id}' has a different OS type ['{source}'] than the parent "
        f"gallery image OS type ['{definition}'].",
    )


def property_change_not_allowed(name: str) -> ArmError:
    return ArmError(
        409, "PropertyChangeNotAllowed", f"Changing property '{name}' is not allowed.", target=name
    )


def referenced_resource_not_found(referenced: str, referencing: str) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceReference",
        f"Resource {referenced} referenced by resource {referencing} was not found. Please make sure "
        "that the referenced resource exists, and that both resources are in the same region.",
    )


def sku_not_available(size: str, location: str) -> ArmError:
    return ArmError(
        409,
        "SkuNotAvailable",
        f"The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: "
        f"{size}' is currently not available in location '{location}'. Please try another size or deploy "
        "to a different location or different zone. See https://aka.ms/azureskunotavailable for details.",
    )


def cores_quota_exceeded(location: str, limit: int, usage: int, required: int) -> ArmError:
    return ArmError(
        409,
        "OperationNotAllowed",
        "Operation could not be completed as it results in exceeding approved Total Regional Cores quota. "
        f"Additional details - Deployment Model: Resource Manager, Location: {location}, Current Limit: "
        f"{limit}, Current Usage: {usage}, Additional Required: {required}, (Minimum) New Limit Required: "
        f"{usage + required}. Submit a request for Quota increase at https://aka.ms/ProdportalCRP by "
        "specifying parameters listed in the 'Details' section for deployment to succeed.",
    )


def disk_in_use(disk: str, vm_id: str) -> ArmError:
    """Modeled (see above): deleting or attaching a disk that a VM uses."""
    return ArmError(409, "OperationNotAllowed", f"Disk {disk} is attached to VM {vm_id}.")


def nic_in_use(nic_id: str, vm_id: str) -> ArmError:
    return ArmError(
        400,
        "NicInUse",
        f"Network Interface {nic_id} is used by existing resource {vm_id}. In order to delete the "
        "network interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
    )


def extension_failed(vm: str, handler: str, message: str) -> ArmError:
    return ArmError(
        409,
        "VMExtensionProvisioningError",
        f"VM '{vm}' has reported a failure when processing extension '{handler}'. "
        f'Error message: "{message}".',
    )


def injected(status: int, error_code: str) -> ArmError:
    """The bodies ARM and Compute send with throttling and server errors."""
    if status == 429:
        return ArmError(
            429,
            "TooManyRequests",
            "The request is being throttled as the limit has been reached for operation type - "
            "Read_30Min. For more information, see - https://aka.ms/throttling",
        )
    if status == 502:
        return ArmError(
            502, "BadGateway", "The gateway received an invalid response from 'Microsoft.Compute'."
        )
    if status == 503:
        return ArmError(
            503, "ServiceUnavailable", "The service is currently unavailable. Please retry later."
        )
    return ArmError(status, error_code, "An internal execution error occurred. Please retry later.")


def entra_error(error: str, aadsts: int, description: str) -> dict[str, Any]:
    """Entra ID's OAuth2 error body (what MSAL and azure-identity parse)."""
    now = datetime.now(UTC)
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    return {
        "error": error,
        "error_description": f"AADSTS{aadsts}: {description} Trace ID: {trace} Correlation ID: {correlation} "
        f"Timestamp: {now:%Y-%m-%d %H:%M:%S}Z",
        "error_codes": [aadsts],
        "timestamp": f"{now:%Y-%m-%d %H:%M:%S}Z",
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={aadsts}",
    }
