"""spec.source and spec.copy, field by field: the defaults a spec written before them gets, each value read,
and the exact InvalidSpec for each unusable one."""

from __future__ import annotations

from typing import Any

import pytest

from vmgen.domain import copy_spec, errors
from vmgen.domain.copy_spec import CopySpec, Source

SUBNET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, Source.IN_PLACE, id="no source is in place"),
        pytest.param({"source": "InPlace"}, Source.IN_PLACE, id="InPlace"),
        pytest.param({"source": "Copy"}, Source.COPY, id="Copy"),
    ],
)
def test_the_source_is_read(spec: dict[str, Any], expected: Source) -> None:
    assert copy_spec.source(spec) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(None, CopySpec(), id="no copy: every default"),
        pytest.param({}, CopySpec(), id="an empty copy: every default"),
        pytest.param(
            {"subnetId": SUBNET, "stopSourceFirst": True, "keepOnFailure": True},
            CopySpec(subnet_id=SUBNET, stop_source_first=True, keep_on_failure=True),
            id="every field",
        ),
        pytest.param(
            {"subnetId": SUBNET.upper()}, CopySpec(subnet_id=SUBNET.upper()), id="an id in capitals"
        ),
    ],
)
def test_spec_copy_is_read_field_by_field(body: dict[str, Any] | None, expected: CopySpec) -> None:
    assert copy_spec.copy({} if body is None else {"copy": body}) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"source": "Clone"}, "spec.source must be InPlace or Copy, not 'Clone'", id="an unknown source"
        ),
        pytest.param({"copy": "yes"}, "spec.copy must be an object", id="a copy that is text"),
        pytest.param(
            {"copy": {"subnetId": "vnet-1"}},
            "spec.copy.subnetId must be a subnet id (.../virtualNetworks/<vnet>/subnets/<name>),"
            " not 'vnet-1'",
            id="a subnet id without /subnets/",
        ),
        pytest.param(
            {"copy": {"subnetId": 7}},
            "spec.copy.subnetId must be a subnet id (.../virtualNetworks/<vnet>/subnets/<name>), not 7",
            id="a subnet id that is not text",
        ),
    ],
)
def test_an_unusable_source_or_copy_says_exactly_what_is_wrong(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidSpec) as caught:
        copy_spec.source(spec) if "source" in spec else copy_spec.copy(spec)

    assert caught.value.message == message
