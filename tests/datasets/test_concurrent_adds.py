"""Two processes adding to one dataset at once get distinct, consecutive version numbers, and every version
they were told about is stored whole."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shipyard.config import Settings
from shipyard.datasets import DatasetClient
from shipyard.tracking.client import TrackingClient

_ADDER = """
import sys
from pathlib import Path
from shipyard.datasets import add_dataset
root, who = Path(sys.argv[1]), sys.argv[2]
for i in range(int(sys.argv[3])):
    folder = root / f"{who}-{i}"
    folder.mkdir(parents=True)
    (folder / "part.csv").write_text(f"id,who\\n{i},{who}\\n")
    print(add_dataset(folder, "customers").version, flush=True)
"""


def test_two_processes_never_share_a_version_number(settings: Settings, tmp_path: Path) -> None:
    env = {**os.environ, "SHIPYARD_HOME": str(settings.home)}
    adds = 8
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ADDER, str(tmp_path / "src"), who, str(adds)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    answers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        answers += [int(line) for line in out.split()]
    assert sorted(answers) == list(range(1, 2 * adds + 1))
    client = DatasetClient(TrackingClient(settings))
    assert [v.version for v in client.versions("customers")] == list(range(1, 2 * adds + 1))
    for number in answers:
        restored = client.get(f"customers@{number}", tmp_path / "out" / str(number))
        assert restored.written == ("part.csv",)
