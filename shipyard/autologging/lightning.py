"""PyTorch Lightning autologging (placeholder)."""

from __future__ import annotations

from typing import Any

from shipyard.autologging import patching
from shipyard.autologging.options import AutologOptions

LIBRARY = "lightning"


def autolog(**options: Any) -> None:
    if options.pop("disable", False):
        patching.disable(LIBRARY)
        return
    patching.enable(LIBRARY, AutologOptions.of(options), "lightning.pytorch", lambda: None)
