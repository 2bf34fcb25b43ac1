"""Check simulator responses against Azure's own published REST API definitions.

A simulator that only agrees with itself drifts away from Azure unnoticed: a misspelt status level or a
missing `location` would pass every test and break against the real service. So every response body is
validated against a trimmed copy of Azure's swagger (see `schemas/README.md` for sources and commits).

Traps avoided: the swagger files reference each other through relative paths that point outside the
folder (`../../common-types/v1/common.json`); they are resolved here by file name instead of by path.
Swagger 2.0 schemas are JSON Schema draft 4 plus `x-ms-*` extensions, which the validator ignores.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT4

__all__ = ["response_definition", "validate"]

_SCHEMAS = Path(__file__).with_name("schemas")
_BASE = "https://github.com/Azure/azure-rest-api-specs/blob/main/"
# Searched in this order for a definition name; the first file that defines it wins.
_FILES = ("ComputeRP.json", "DiskRP.json", "GalleryRP.json", "NetworkRP.json", "types.json", "common.json")

# Which published definition a successful response of each simulator operation must match.
_SUCCESS_DEFINITIONS = {
    "get": "VirtualMachine",
    "instanceView": "VirtualMachineInstanceView",
    "operationStatus": "OperationStatusResult",
    "operationResult": "RunCommandResult",
    "createRunCommand": "VirtualMachineRunCommand",
    "getRunCommand": "VirtualMachineRunCommand",
    "listExtensions": "VirtualMachineExtensionsListResult",
    "getExtension": "VirtualMachineExtension",
    "createImage": "Image",
    "getImage": "Image",
    "createSnapshot": "Snapshot",
    "getSnapshot": "Snapshot",
    "createGallery": "Gallery",
    "getGallery": "Gallery",
    "createGalleryImage": "GalleryImage",
    "getGalleryImage": "GalleryImage",
    "createGalleryImageVersion": "GalleryImageVersion",
    "getGalleryImageVersion": "GalleryImageVersion",
    "createDisk": "Disk",
    "getDisk": "Disk",
    "createVm": "VirtualMachine",
    "createVirtualNetwork": "VirtualNetwork",
    "getVirtualNetwork": "VirtualNetwork",
    "getSubnet": "Subnet",
    "createNetworkInterface": "NetworkInterface",
    "getNetworkInterface": "NetworkInterface",
}


def response_definition(operation: str, status: int) -> str | None:
    """The definition an ARM response body must match (None: this response has no body)."""
    if status >= 400:
        return "CloudError"
    return _SUCCESS_DEFINITIONS.get(operation)


def validate(definition_name: str, body: Any) -> None:
    """Raise `jsonschema.ValidationError` unless `body` matches the named Azure definition."""
    documents, registry = _load()
    for file_name in _FILES:
        if definition_name in documents[file_name]["definitions"]:
            schema = {
                "$ref": f"{_BASE}{documents[file_name]['x-vmgen-source']['path']}#/definitions/"
                f"{definition_name}"
            }
            jsonschema.Draft4Validator(schema, registry=registry).validate(body)
            return
    raise KeyError(f"no definition named {definition_name!r} in {', '.join(_FILES)}")


@cache
def _load() -> tuple[dict[str, dict[str, Any]], Registry[Any]]:
    documents = {name: json.loads((_SCHEMAS / name).read_text()) for name in _FILES}
    registry: Registry[Any] = Registry()
    for document in documents.values():
        uri = _BASE + document["x-vmgen-source"]["path"]
        registry = registry.with_resource(uri, DRAFT4.create_resource(document))
        for ref in _refs(document):
            target = urldefrag(urljoin(uri, ref)).url
            if target != uri:
                file_name = target.rsplit("/", 1)[-1]
                registry = registry.with_resource(target, DRAFT4.create_resource(documents[file_name]))
    return documents, registry


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()
