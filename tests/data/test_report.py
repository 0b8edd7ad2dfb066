"""The self-contained HTML drift report and ``shipyard data drift --output``."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from shipyard.data.drift import dataset_drift
from shipyard.data.report import render_drift_report
from tests.cli.test_cli import run_cli

HOSTILE = "<b>&\"x'"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}


class _Checker(HTMLParser):
    """Collects tags, text and attributes; records any unbalanced or misnested element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(document: str) -> _Checker:
    checker = _Checker()
    checker.feed(document)
    checker.close()
    assert checker.problems == [] and checker.stack == []
    return checker


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = load_breast_cancer(as_frame=True).frame
    current = reference.copy()
    current["mean radius"] += 3 * reference["mean radius"].std()
    return reference, current


@pytest.fixture(scope="module")
def report(frames: tuple[pd.DataFrame, pd.DataFrame]) -> str:
    reference, current = frames
    return render_drift_report(reference, current, dataset_drift(reference, current))


def test_summary_table_and_charts(frames: tuple[pd.DataFrame, pd.DataFrame], report: str) -> None:
    reference, _ = frames
    compared = reference.shape[1]
    checker = _parse(report)
    text = " ".join(" ".join(checker.text).split())
    assert report.startswith("<!DOCTYPE html>")
    assert "No dataset drift" in text and f"1 of {compared} (3.23%)" in text and "50.00% or more" in text
    assert f"Columns compared {compared}" in text and "569 reference, 569 current" in text
    assert "Missing in current none" in text
    # the summary precedes the table, which precedes the charts
    assert report.index("Summary") < report.index("<table") < report.index("<svg")
    # mean radius is drifted and listed first, in the table and among the charts
    body = report[report.index("<tbody>") :]
    first_row = body[: body.index("</tr>")]
    assert "mean radius" in first_row and "<strong>drift</strong>" in first_row
    assert report.count("<strong>drift</strong>") == 1
    assert re.search(r'<h3 id="column-0-heading">mean radius ', report)
    # one chart per compared column, each with accessible text and its numbers
    assert report.count("<svg") == compared == checker.tags.count("svg")
    assert report.count('role="img"') == compared and report.count("<details>") == compared
    assert "Distribution of mean radius: reference and current" in text
    assert len(report) < 1_000_000


def test_self_contained(report: str) -> None:
    assert "http://" not in report and "https://" not in report
    assert "<script" not in report and "<link" not in report and "@import" not in report
    assert "url(" not in report


def test_deterministic(frames: tuple[pd.DataFrame, pd.DataFrame], report: str) -> None:
    reference, current = frames
    assert render_drift_report(reference, current, dataset_drift(reference, current)) == report
    stamped = render_drift_report(
        reference, current, dataset_drift(reference, current), generated="run 42 <today>"
    )
    assert "run 42 &lt;today&gt;" in stamped


def test_hostile_names_categorical_and_missing_column() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            HOSTILE: rng.normal(size=300),
            "colour": rng.choice(["red", "green", "<blue>"], size=300, p=[0.6, 0.3, 0.1]),
            "flag": rng.random(300) < 0.3,
            "only in reference": np.arange(300.0),
            "many": rng.choice([f"c{i}" for i in range(30)], size=300),
        }
    )
    current = pd.DataFrame(
        {
            HOSTILE: rng.normal(size=200),
            "colour": rng.choice(["red", "green", "<blue>"], size=200, p=[0.1, 0.3, 0.6]),
            "flag": rng.random(200) < 0.3,
            "many": rng.choice([f"c{i}" for i in range(30)], size=200),
            "new & <odd>": np.ones(200),
        }
    )
    current.loc[:4, "colour"] = None
    result = dataset_drift(reference, current)
    document = render_drift_report(reference, current, result, title="Drift <of> 'x' & \"y\"")
    checker = _parse(document)
    text = " ".join(" ".join(checker.text).split())

    assert HOSTILE not in document and "<b>" not in document and "<blue>" not in document
    assert "&lt;b&gt;&amp;&quot;x&#x27;" in document and HOSTILE in text
    assert "<title>Drift &lt;of&gt; &#x27;x&#x27; &amp; &quot;y&quot;</title>" in document
    assert "Missing in current only in reference" in text
    assert "Missing in reference new & <odd>" in text
    assert "Rows 300 reference, 200 current" in text
    # the categorical column is drifted, listed first, charted as grouped bars with its categories
    assert re.search(r'<h3 id="column-0-heading">colour ', document)
    assert "missing: 0 reference, 5 current" in text
    assert document.count("<svg") == 4
    chart = document[document.index('id="column-0"') : document.index('id="column-1"')]
    assert "categorical" in chart and "&lt;blue&gt;" in chart and "Grouped bars over the 3" in chart
    assert "Distribution of colour: reference and current, proportion of rows per category" in chart
    # more than 20 categories: the top 20 are shown, the rest counted
    assert "10 less frequent categories are not shown." in text
    # every attribute value parsed back intact (no quote broke out of an attribute)
    assert all(value is None or "<" not in value for _, value in checker.attrs)


@pytest.mark.slow
def test_cli_writes_the_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    frame = load_breast_cancer(as_frame=True).frame
    shifted = frame.copy()
    shifted["mean radius"] += 3 * frame["mean radius"].std()
    train, served = tmp_path / "train.parquet", tmp_path / "served.csv"
    frame.to_parquet(train)
    shifted.drop(columns=["mean texture"]).to_csv(served, index=False)
    output = tmp_path / "reports" / "drift.html"

    code, out, err = run_cli(capsys, "data", "drift", str(train), str(served), "-o", str(output))
    assert code == 0 and "DRIFT" in out and "missing in current: mean texture" in err
    assert f"wrote the report to {output}" in out
    document = output.read_text(encoding="utf-8")
    checker = _parse(document)
    text = " ".join(" ".join(checker.text).split())
    assert "Missing in current mean texture" in text and document.count("<svg") == frame.shape[1] - 1
    assert re.search(r'<h3 id="column-0-heading">mean radius ', document)

    code, out, _ = run_cli(capsys, "data", "drift", str(train), str(served), "--output", str(output))
    assert code == 0 and output.read_text(encoding="utf-8") == document
