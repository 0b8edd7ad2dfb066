"""A pipeline whose one step runs long, for the tests that kill its driver."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from shipyard.pipelines import component, pipeline


@component
def nap(seconds: float, marker: str) -> float:
    """Start a child process of its own (a step's subprocess), say so in ``marker``, then sleep; when
    ``marker`` exists already (a resumed run), return at once."""
    if Path(marker).exists():
        return 0.0
    child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    Path(marker).write_text(f"{os.getpid()} {child.pid}")
    time.sleep(seconds)
    child.wait()
    return seconds


@pipeline
def napping(marker: str, seconds: float = 60.0) -> None:
    nap(seconds=seconds, marker=marker)
