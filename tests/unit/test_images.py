"""The capture and copy value types read Azure's vocabulary the way Azure means it."""

from __future__ import annotations

import pytest

from vmgen.domain import images


class TestSecurityTypes:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (None, images.SecurityType.STANDARD),
            ("", images.SecurityType.STANDARD),
            ("TrustedLaunch", images.SecurityType.TRUSTED_LAUNCH),
            ("confidentialvm", images.SecurityType.CONFIDENTIAL_VM),
            ("TrustedLaunchSupported", images.SecurityType.TRUSTED_LAUNCH_SUPPORTED),
            ("SomethingNew", images.SecurityType.UNKNOWN),
        ],
    )
    def test_a_missing_security_type_is_standard_and_an_unknown_one_is_not_guessed(
        self, text: str | None, expected: images.SecurityType
    ) -> None:
        assert images.SecurityType.parse(text) is expected


class TestReplication:
    def version(self, provisioning: str, aggregated: str) -> images.ImageVersion:
        return images.ImageVersion(
            id=images.GalleryImageVersionId("/v"),
            provisioning_state=provisioning,
            source_id="/vm",
            aggregated=images.ReplicationState.parse(aggregated),
            regions=(),
        )

    def test_a_version_is_ready_only_when_provisioned_and_replicated_everywhere(self) -> None:
        assert self.version("Succeeded", "Completed").ready
        assert not self.version("Creating", "InProgress").ready
        assert not self.version("Succeeded", "InProgress").ready
        assert not self.version("Failed", "Failed").ready

    def test_an_unreported_replication_state_is_unknown(self) -> None:
        assert images.ReplicationState.parse(None) is images.ReplicationState.UNKNOWN
        assert images.ReplicationState.parse("completed") is images.ReplicationState.COMPLETED
