"""A training script for `shipyard train` in the tests: tests/training/jobs.py's fit, checkpointing every
epoch, with the marker files the kill/resume test watches."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.training.jobs

from tests.training import jobs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--marks", type=Path, required=True)
    options = parser.parse_args()
    options.marks.mkdir(exist_ok=True)
    result = jobs.fit(
        epochs=options.epochs, checkpoint_every=1, pause_s=options.pause, marks=str(options.marks)
    )
    if result["rank"] == 0:
        (options.marks / f"result-{result['start']}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
