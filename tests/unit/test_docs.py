"""The reason vocabulary and the docs say the same thing: every reason vmgen can write is documented."""

from __future__ import annotations

import pytest

from vmgen.domain.reasons import Reason
from vmgen_testbed.paths import REPO_ROOT

DOCS = ("docs/troubleshooting.md", "docs/api.md")


@pytest.mark.parametrize("doc", DOCS)
def test_every_reason_appears_in_the_doc(doc: str) -> None:
    text = (REPO_ROOT / doc).read_text()
    missing = [reason.value for reason in Reason if f"`{reason.value}`" not in text]
    assert missing == [], f"{doc} does not mention {missing}"
