"""The HTML report of a tuning study, on real in-memory Optuna studies."""

from __future__ import annotations

import math
import warnings

import optuna
import pytest

from shipyard.errors import InvalidInput
from shipyard.tuning.report import render_report

optuna.logging.set_verbosity(optuna.logging.WARNING)

PLOTLY_MARKER = "plotly.js v"  # the inline bundle's header comment


def _study(directions: list[str] | None = None, seed: int = 0) -> optuna.Study:
    sampler = optuna.samplers.RandomSampler(seed=seed)
    if directions is None:
        return optuna.create_study(direction="maximize", sampler=sampler)
    return optuna.create_study(directions=directions, sampler=sampler)


def _mixed(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -4.0, 4.0)
    n = trial.suggest_int("n", 1, 5)
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    return -((x - 1.0) ** 2) - 0.1 * n + {"a": 0.0, "b": 1.0, "c": 0.5}[kind]


def _failing(trial: optuna.Trial) -> float:
    trial.suggest_float("x", 0.0, 1.0)
    raise RuntimeError("diverged")


def _sections(page: str) -> int:
    return page.count("<section>")


def test_single_objective_report() -> None:
    study = _study()
    study.optimize(_mixed, n_trials=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", optuna.exceptions.ExperimentalWarning)
        page = render_report(study, title="Tune the quadratic", metric_names=["accuracy"])

    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Tune the quadratic</title>" in page
    for heading in ("Optimization history", "Parameter importances", "Parallel coordinate", "Slice plot"):
        assert f"<h2>{heading}" in page
    assert "(not available" not in page
    assert page.count(PLOTLY_MARKER) == 1  # plotly.js inline, once
    assert page.count("Plotly.newPlot(") == _sections(page) == 4
    assert "accuracy" in page
    assert f"accuracy = {study.best_value:.6g} (trial {study.best_trial.number})" in page
    assert "COMPLETE 20" in page


def test_multi_objective_report() -> None:
    study = _study(["minimize", "maximize"])
    study.optimize(
        lambda t: (t.suggest_float("x", 0.0, 1.0) ** 2, math.sqrt(t.params["x"]) + t.suggest_int("k", 0, 3)),
        n_trials=20,
    )
    page = render_report(study, title="Latency vs accuracy", metric_names=["latency_ms", "top1"])

    assert "<h2>Pareto front</h2>" in page
    assert "<h2>Parameter importances: latency_ms</h2>" in page
    assert "<h2>Parameter importances: top1</h2>" in page
    assert "latency_ms (minimize), top1 (maximize)" in page
    front = len(study.best_trials)
    assert f"{front} trial" in page
    assert page.count(PLOTLY_MARKER) == 1
    assert page.count("Plotly.newPlot(") == 3
    assert "(not available" not in page


@pytest.mark.parametrize("n_complete", [0, 1])
def test_few_complete_trials_give_notes(n_complete: int) -> None:
    study = _study()
    study.optimize(_failing, n_trials=3, catch=(RuntimeError,))
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=n_complete)

    page = render_report(study, title="Broken", metric_names=["loss"])

    assert "FAIL 3" in page
    if n_complete == 0:
        assert "<td>no complete trial</td>" in page
        assert page.count("(not available: no complete trial)") == 4
        assert PLOTLY_MARKER not in page  # nothing drawn, nothing to include
    else:
        assert "(not available: needs at least 2 complete trials, the study has 1)" in page
        assert page.count("(not available: ") == 1  # history, parallel coordinates, slice still drawn
        assert page.count(PLOTLY_MARKER) == 1


def test_empty_multi_objective_study() -> None:
    study = _study(["minimize", "minimize"])
    page = render_report(study, title="Nothing yet", metric_names=["a", "b"])
    assert page.count("(not available: no complete trial)") == 3
    assert "Trials</th><td>0</td>" in page


def test_user_text_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    study = _study()
    study.optimize(lambda t: t.suggest_float(evil, 0.0, 1.0) + t.suggest_float("y", 0.0, 1.0), n_trials=8)

    page = render_report(study, title=f"Report {evil}", metric_names=[f"m{evil}"])

    assert evil not in page
    assert "<title>Report &lt;script&gt;alert(1)&lt;/script&gt;</title>" in page
    assert f"{evil.replace('<', '&lt;').replace('>', '&gt;')} = " in page  # best params in the summary
    assert "<script>alert" not in page
    assert "\\u003cscript\\u003ealert(1)" in page  # in the figures' data, JSON-escaped by plotly


def test_conditional_params_render() -> None:
    def objective(trial: optuna.Trial) -> float:
        model = trial.suggest_categorical("model", ["linear", "tree"])
        if model == "tree":
            return 0.1 * trial.suggest_int("depth", 1, 8)
        return math.log10(trial.suggest_float("lr", 1e-4, 1.0, log=True)) + 4

    study = _study(seed=1)
    study.optimize(objective, n_trials=20)
    page = render_report(study, title="Conditional", metric_names=["score"])

    assert "<h2>Parallel coordinates</h2>" in page
    assert "(not available" not in page
    assert page.count(PLOTLY_MARKER) == 1
    assert page.count("Plotly.newPlot(") == 4


def test_constant_parameters_have_no_importances() -> None:
    study = _study()
    study.optimize(lambda t: float(t.suggest_categorical("only", ["one"]) == "one"), n_trials=4)
    page = render_report(study, title="Flat", metric_names=["v"])
    assert "(not available: no parameter varies across the complete trials)" in page


def test_metric_names_must_match_objectives() -> None:
    with pytest.raises(InvalidInput, match="metric_names"):
        render_report(_study(), title="x", metric_names=["a", "b"])
