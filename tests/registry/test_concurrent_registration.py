"""Several processes registering versions of one model at once get distinct numbers, and none is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from shipyard import Settings
from shipyard.registry.client import RegistryClient
from shipyard.tracking.client import TrackingClient

CODE = textwrap.dedent(
    """
    import sys
    from shipyard.registry.client import RegistryClient
    from shipyard.tracking.client import TrackingClient
    client = RegistryClient(TrackingClient())
    worker = sys.argv[1]
    for i in range(15):
        client.create_version(
            "shared", flavor="sklearn", source_uri=f"w{worker}-{i}", package_uri="/x",
            manifest_sha256="0" * 64, run_id=None, lineage={},
        )
    print("DONE")
    """
)


def test_processes_registering_at_once_get_distinct_versions(
    backend_settings: Settings, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(backend_settings.home),
        "SHIPYARD_DB_URL": backend_settings.db_url,
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    RegistryClient(TrackingClient(backend_settings)).create_model("shared")  # migrate before the race
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CODE, str(w)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    versions = RegistryClient(TrackingClient(backend_settings)).list_versions("shared")
    assert [v.version for v in versions] == list(range(1, 61))
    assert len({v.source_uri for v in versions}) == 60
