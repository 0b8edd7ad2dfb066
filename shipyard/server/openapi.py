"""The server's OpenAPI document: ``python -m shipyard.server.openapi > docs/openapi.json``."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def document() -> dict[str, Any]:
    """The OpenAPI document of the server's app (built over a throw-away store)."""
    from shipyard.config import Settings
    from shipyard.server.app import create_app
    from shipyard.store.server_artifacts import stop_serving

    with tempfile.TemporaryDirectory() as home:
        settings = Settings.load(environ={"SHIPYARD_HOME": home}, cwd=home)
        try:
            return create_app(settings, artifacts=str(Path(home) / "artifacts")).openapi()
        finally:
            stop_serving()  # this process is no server: its shipyard-artifacts:// URIs stay a client's


if __name__ == "__main__":
    sys.stdout.write(json.dumps(document(), indent=2, sort_keys=True) + "\n")
    sys.exit(0)
