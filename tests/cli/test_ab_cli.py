"""``shipyard ab plan`` and ``shipyard ab simulate``."""

from __future__ import annotations

import json

import pytest

from shipyard.cli import main


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return (info.value.code if isinstance(info.value.code, int) else 0), out, err


def test_plan_gives_both_sample_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "ab", "plan", "--baseline", "0.1", "--mde", "0.01")
    assert code == 0, err
    assert "14,751" in out and "sequential" in out
    code, out, _ = _cli(capsys, "ab", "plan", "--baseline", "0.1", "--mde", "0.1", "--relative", "--json")
    found = json.loads(out)
    assert code == 0 and found["fixed"] == 14_751 and found["sequential"] > found["fixed"]
    code, out, _ = _cli(
        capsys, "ab", "plan", "--kind", "numeric", "--baseline", "0", "--sd", "1", "--mde", "0.2", "--json"
    )
    assert code == 0 and json.loads(out)["fixed"] == 393


def test_simulate_prints_each_readings_false_positive_rate(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "ab", "simulate", "--runs", "300", "--n", "5000", "--looks", "50")
    assert code == 0, err
    assert "false positives" in out and "sequential (mSPRT)" in out
    code, out, _ = _cli(capsys, "ab", "simulate", "--runs", "300", "--n", "5000", "--looks", "50", "--json")
    found = json.loads(out)
    assert code == 0 and found["sequential"] <= 0.05 < found["naive"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--baseline", "0.1", "--mde", "0"], "minimum detectable effect must be a non-zero number"),
        (["plan", "--baseline", "1.5", "--mde", "0.1"], "rates between 0 and 1"),
        (["plan", "--kind", "numeric", "--baseline", "3", "--mde", "1"], "standard deviation"),
        (["plan", "--kind", "ratio", "--baseline", "0.1", "--mde", "0.01"], "outcome kind must be one of"),
        (["simulate", "--alpha", "2"], "alpha must be between 0 and 1"),
    ],
)
def test_bad_input_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = _cli(capsys, "ab", *args)
    assert code == 2 and message in err and err.count("\n") == 1
