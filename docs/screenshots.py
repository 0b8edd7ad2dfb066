"""The README's UI screenshots: `shipyard demo` into a fresh store, `shipyard ui` over it, three pages in
headless Chromium (Debian's /usr/bin/chromium). Writes docs/images/ui-{runs,pipeline,monitoring}.png."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

IMAGES = Path(__file__).parent / "images"
PORT = 5077


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="shipyard-shots-")) / "home"
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    shipyard = [sys.executable, "-m", "shipyard.cli"]
    subprocess.run([*shipyard, "demo"], env=env, check=True, stdout=subprocess.DEVNULL)
    server = subprocess.Popen([*shipyard, "ui", "--port", str(PORT)], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{PORT}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{url}/api/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        home_page, pipelines = httpx.get(f"{url}/ui/").text, httpx.get(f"{url}/ui/pipelines").text
        experiment = re.search(r'href="/ui/experiments/([0-9a-f]+)">demo<', home_page)[1]
        pipeline = re.search(r'href="/ui/pipelines/runs/([0-9a-f]+)"', pipelines)[1]
        pages = {
            "ui-runs": f"/ui/experiments/{experiment}?order=metrics.accuracy+DESC",
            "ui-pipeline": f"/ui/pipelines/runs/{pipeline}",
            "ui-monitoring": "/ui/monitoring/breast-cancer",
        }
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for name, path in pages.items():
                page.goto(url + path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(IMAGES / f"{name}.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
