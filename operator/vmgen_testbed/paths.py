"""Where the testbed keeps what it builds once and reuses (binaries, the Debian rootfs).

`VMGEN_CACHE_DIR` wins; otherwise `.cache/` at the repository root (git-ignored). CI points the
variable at a folder outside the clone so that a second run on the same machine reuses the builds.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    configured = os.environ.get("VMGEN_CACHE_DIR")
    path = Path(configured) if configured else REPO_ROOT / ".cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
