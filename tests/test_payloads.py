"""Payload logs: sampling, rotation by size and time, and reading them back from the artifact store."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest

from shipyard.errors import InvalidInput
from shipyard.payloads import PayloadLogConfig, PayloadLogger, read_payloads
from shipyard.serving.repository import ModelConfig, default_label
from shipyard.store.artifacts import ArtifactStore


def record(logger: PayloadLogger, n: int, model: str = "churn") -> None:
    logger.log(
        model=model,
        version="3",
        label="champion",
        protocol="v2",
        request_id=f"r{n}",
        status=200,
        latency_s=0.002,
        inputs={"age": np.array([n])},
        outputs={"predict": np.array([n % 2])},
        rows=1,
    )


def test_files_rotate_by_rows_and_read_back_in_order(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    logger = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_rows=5, max_seconds=3600))
    logger.start()
    for n in range(12):
        record(logger, n)
    deadline = time.monotonic() + 10
    while logger.files_written < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    logger.close()  # writes the rest
    files = [f.path for f in store.list("payloads/churn", recursive=True)]
    assert len(files) >= 3 and all(f.endswith(".parquet") for f in files)
    frame = read_payloads(store, "churn")
    assert frame["request_id"].tolist() == [f"r{n}" for n in range(12)]
    assert frame["inputs"][3] == '{"age": [3]}' and frame["outputs"][3] == '{"predict": [1]}'
    assert str(frame["timestamp"].dt.tz) == "UTC"


def test_files_rotate_by_time(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    logger = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_rows=1000, max_seconds=0.1))
    logger.start()
    record(logger, 1)
    deadline = time.monotonic() + 10
    while logger.files_written < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert logger.files_written == 1  # written by the timer, not by close()
    logger.close()


def test_sampling_keeps_about_the_rate_and_zero_is_off(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    some = PayloadLogger(store, PayloadLogConfig(sample_rate=0.25), rng=random.Random(3))
    assert 200 < sum(some.sampled() for _ in range(1000)) < 300
    off = PayloadLogger(store, PayloadLogConfig())
    assert not off.enabled and not any(off.sampled() for _ in range(100))
    assert read_payloads(store).empty


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        PayloadLogConfig(sample_rate=1.5)


def test_model_config_names_its_versions() -> None:
    assert default_label("models:/churn@champion") == "champion"
    assert default_label("models:/churn/3") == "3"
    assert default_label("/models/churn") == "default"
    with pytest.raises(InvalidInput, match="either uri or versions"):
        ModelConfig("churn").targets()


def test_files_written_before_the_model_uri_column_read_back_with_it_unknown(tmp_path: Path) -> None:
    """Logs written by an older server (no ``model_uri`` column) read back beside new ones, null there."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from shipyard.payloads import SCHEMA

    store = ArtifactStore(str(tmp_path))
    old_schema = pa.schema([f for f in SCHEMA if f.name not in ("model_uri", "request_id")])
    old = pa.Table.from_pylist(
        [
            {
                "timestamp": pa.scalar(0, pa.timestamp("ms", tz="UTC")).as_py(),
                "model": "churn",
                "version": "3",
                "label": "champion",
                "protocol": "v2",
                "shadow": False,
                "status": 200,
                "latency_ms": 1.0,
                "rows": 1,
                "inputs": '{"age": [1]}',
                "outputs": '{"predict": [0]}',
                "error": None,
            }
        ],
        schema=old_schema,
    )
    buffer = io.BytesIO()
    pq.write_table(old, buffer)
    store.put_bytes(buffer.getvalue(), "payloads/churn/1970-01-01/000000000000-000000-old.parquet")
    logger = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0))
    logger.log(
        model="churn",
        version="3",
        label="champion",
        protocol="v2",
        request_id="r1",
        status=200,
        latency_s=0.001,
        inputs={"age": np.array([2])},
        outputs=None,
        rows=1,
        model_uri="models:/churn-registered/3",
    )
    logger.flush()
    frame = read_payloads(store, "churn")
    assert list(frame.columns) == SCHEMA.names
    assert (
        frame["model_uri"].isna().tolist() == [True, False]
        and frame["model_uri"][1] == "models:/churn-registered/3"
    )
    assert frame["request_id"].isna().tolist() == [True, False] and frame["request_id"][1] == "r1"
    alone = ArtifactStore(str(tmp_path / "old-only"))
    alone.put_bytes(buffer.getvalue(), "payloads/churn/1970-01-01/000000000000-000000-old.parquet")
    only_old = read_payloads(alone, "churn")
    assert list(only_old.columns) == SCHEMA.names and only_old["model_uri"].isna().all()
