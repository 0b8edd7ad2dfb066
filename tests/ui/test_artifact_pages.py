"""A run's artifacts in the UI: previews by kind, the head of big files, files served so that none can act
as a page of the site (HTML sandboxed, the rest downloads), and only files the run recorded."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx
import pandas as pd

import shipyard
from tests.conftest import make_settings, platform_server

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_artifact_previews_and_files(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    files = tmp_path / "files"
    files.mkdir()
    (files / "plot.png").write_bytes(PNG)
    pd.DataFrame({"a": range(500), "b": ["<x>"] * 500}).to_parquet(files / "table.parquet")
    (files / "blob.bin").write_bytes(b"\x00\x01" * 10)
    with shipyard.start_run("art", settings=settings) as run:
        run.log_text("line\n" * 30_000, "logs/big.log")  # 150 KB: only its head is shown
        run.log_dict({"b": [1, 2], "a": "<script>"}, "meta.json")
        run.log_dict({"values": list(range(400_000))}, "huge.json")  # over the 2 MiB a preview reads
        run.log_text("x,y\n" + "".join(f"{i},{i * i}\n" for i in range(1000)), "data.csv")
        run.log_text("<html><script>parent.alert(1)</script><p>report</p></html>", "report.html")
        for name in ("plot.png", "table.parquet", "blob.bin"):
            run.log_artifact(files / name)
    base = f"/ui/runs/{run.run_id}/artifact"
    with platform_server(settings) as url, httpx.Client(base_url=url) as web:
        listing = web.get(f"/ui/runs/{run.run_id}").text
        assert f'href="{base}?path=meta.json"' in listing

        text = web.get(base, params={"path": "logs/big.log"})
        assert text.status_code == 200 and "download for the rest" in text.text
        assert text.text.count("line") < 20_000
        as_json = web.get(base, params={"path": "meta.json"}).text
        assert "&#34;&lt;script&gt;&#34;" in as_json or "&quot;&lt;script&gt;&quot;" in as_json
        table = web.get(base, params={"path": "data.csv"}).text
        assert len(re.findall(r"<tr><td>", table)) == 50 and "<th>y</th>" in table
        parquet = web.get(base, params={"path": "table.parquet"}).text
        assert "<td>&lt;x&gt;</td>" in parquet and "The first 50 rows" in parquet
        huge = web.get(base, params={"path": "huge.json"}).text
        assert 'id="too-large"' in huge and 'id="download"' in huge
        image = web.get(base, params={"path": "plot.png"}).text
        assert '<img class="preview"' in image
        framed = web.get(base, params={"path": "report.html"}).text
        assert "<iframe" in framed and " sandbox " in framed

        raw = web.get(f"{base}/raw", params={"path": "report.html"})
        assert raw.headers["content-security-policy"].startswith("sandbox;")
        assert "allow-scripts" not in raw.headers["content-security-policy"]
        png = web.get(f"{base}/raw", params={"path": "plot.png"})
        assert png.headers["content-type"] == "image/png" and png.content == PNG
        blob = web.get(f"{base}/raw", params={"path": "blob.bin"})
        assert blob.headers["content-type"] == "application/octet-stream"
        assert blob.headers["content-disposition"].startswith("attachment")

        for bad in ("../../etc/passwd", "nope.txt", "logs"):
            missing = web.get(base, params={"path": bad})
            assert missing.status_code == 404 and "no artifact file" in missing.text, bad
            assert web.get(f"{base}/raw", params={"path": bad}).status_code == 404
