"""An HTML report of a tuning study, drawn by Optuna's own plots (``optuna.visualization``, plotly).

:func:`render_report` gives one self-contained page (plotly.js inline once, so it opens offline): a summary
(trials by state, the best trial or the Pareto front) and a section per figure. Single objective:
optimization history, parameter importances, parallel coordinates and slice plot; several objectives: the
Pareto front and each objective's parameter importances. A figure the study cannot support (too few
complete trials, no parameter that varies, more than three objectives for a Pareto front) or that Optuna
fails to draw leaves a short "(not available: …)" note in its section instead of failing the report.
"""

from __future__ import annotations

import html
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import optuna
import optuna.visualization as vis
from optuna.trial import FrozenTrial, TrialState

from shipyard.errors import InvalidInput

__all__ = ["render_report"]

_FIGURE_HEIGHT = "520px"
_PARETO_ROWS = 10
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
section { margin-bottom: 2rem; }
.note { color: #666; font-style: italic; }
"""


class _Unavailable(Exception):
    """A figure cannot be drawn for this study; the message says why."""


Builder = Callable[[], Any]


def render_report(study: optuna.Study, *, title: str, metric_names: list[str]) -> str:
    """One self-contained HTML document summarising ``study`` with Optuna's plots.

    Args:
        study: the search's Optuna study, in any state (without a complete trial: the summary and notes).
        title: the page's title and heading (escaped).
        metric_names: one name per objective, in the study's order; they label the axes.

    Raises:
        InvalidInput: ``metric_names`` does not have one entry per objective.
    """
    directions = [d.name.lower() for d in study.directions]
    if len(metric_names) != len(directions):
        raise InvalidInput(
            f"metric_names has {len(metric_names)} entries, the study has {len(directions)} objectives"
        )
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(directions) == 1:
        sections = _single_objective_sections(study, complete, metric_names[0])
    else:
        sections = _multi_objective_sections(study, complete, metric_names, directions)

    parts = [_summary(study, complete, metric_names, directions)]
    plotly_included = False
    for index, (heading, build) in enumerate(sections):
        parts.append(f"<section>\n<h2>{_esc(heading)}</h2>")
        try:
            fragment = _build(build).to_html(
                full_html=False,
                include_plotlyjs=not plotly_included,
                div_id=f"shipyard-figure-{index}",
                default_height=_FIGURE_HEIGHT,
                config=_PLOTLY_CONFIG,
            )
        except Exception as exc:  # a figure must never fail the report
            reason = str(exc) if isinstance(exc, _Unavailable) else f"{type(exc).__name__}: {exc}"
            parts.append(f'<p class="note">(not available: {_esc(_shorten(reason))})</p>')
        else:
            parts.append(fragment)
            plotly_included = True
        parts.append("</section>")

    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_esc(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{_esc(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def _single_objective_sections(
    study: optuna.Study, complete: list[FrozenTrial], metric: str
) -> list[tuple[str, Builder]]:
    def history() -> Any:
        _need_complete(complete, 1)
        return vis.plot_optimization_history(study, target_name=metric)

    def importances() -> Any:
        _need_varying_param(complete)
        return vis.plot_param_importances(study, target_name=metric)

    def parallel() -> Any:
        _need_param(complete)
        return vis.plot_parallel_coordinate(study, target_name=metric)

    def slices() -> Any:
        _need_param(complete)
        return vis.plot_slice(study, target_name=metric)

    return [
        ("Optimization history", history),
        ("Parameter importances", importances),
        ("Parallel coordinates", parallel),
        ("Slice plot", slices),
    ]


def _multi_objective_sections(
    study: optuna.Study, complete: list[FrozenTrial], metrics: list[str], directions: list[str]
) -> list[tuple[str, Builder]]:
    def pareto() -> Any:
        if len(metrics) > 3:
            raise _Unavailable(
                f"a Pareto front is drawn for 2 or 3 objectives, this study has {len(metrics)}"
            )
        _need_complete(complete, 1)
        return vis.plot_pareto_front(study, target_names=list(metrics))

    def importances(index: int) -> Builder:
        # Optuna's default evaluator (PED-ANOVA) takes a lower target as better: negate a maximised one.
        sign = -1.0 if directions[index] == "maximize" else 1.0

        def build() -> Any:
            _need_varying_param(complete)
            return vis.plot_param_importances(
                study, target=lambda t: sign * t.values[index], target_name=metrics[index]
            )

        return build

    sections: list[tuple[str, Builder]] = [("Pareto front", pareto)]
    sections += [(f"Parameter importances: {m}", importances(i)) for i, m in enumerate(metrics)]
    return sections


def _build(build: Builder) -> Any:
    """Run a figure builder with Optuna's experimental warnings silenced; an empty figure is unavailable."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Handled above (the target is negated for a maximised objective).
        warnings.filterwarnings("ignore", message=r".*importances of params to achieve low `target`")
        figure = build()
    for warning in caught:
        if "importances will be equal" in str(warning.message):
            raise _Unavailable("the complete trials do not tell the parameters apart")
    for warning in caught:
        warnings.warn_explicit(
            warning.message, warning.category, warning.filename, warning.lineno, source=warning.source
        )
    if not figure.data:
        raise _Unavailable("nothing to plot")
    return figure


def _need_complete(complete: Sequence[FrozenTrial], n: int) -> None:
    if not complete:
        raise _Unavailable("no complete trial")
    if len(complete) < n:
        raise _Unavailable(f"needs at least {n} complete trials, the study has {len(complete)}")


def _need_param(complete: Sequence[FrozenTrial]) -> None:
    _need_complete(complete, 1)
    if not any(t.params for t in complete):
        raise _Unavailable("the complete trials have no parameters")


def _need_varying_param(complete: Sequence[FrozenTrial]) -> None:
    _need_complete(complete, 2)
    _need_param(complete)
    seen: dict[str, set[str]] = {}
    for trial in complete:
        for name, value in trial.params.items():
            seen.setdefault(name, set()).add(repr(value))
    if all(len(values) < 2 for values in seen.values()):
        raise _Unavailable("no parameter varies across the complete trials")


def _summary(
    study: optuna.Study, complete: list[FrozenTrial], metrics: list[str], directions: list[str]
) -> str:
    counts = Counter(t.state for t in study.get_trials(deepcopy=False))
    by_state = ", ".join(f"{state.name} {counts[state]}" for state in TrialState if counts[state])
    total = sum(counts.values())
    rows: list[tuple[str, str]] = [
        ("Study", study.study_name),
        ("Objective", ", ".join(f"{m} ({d})" for m, d in zip(metrics, directions, strict=True))),
        ("Trials", f"{total}" + (f": {by_state}" if by_state else "")),
    ]
    extra = ""
    if not complete:
        rows.append(("Best", "no complete trial"))
    elif len(directions) == 1:
        best = study.best_trial
        rows.append(("Best value", f"{metrics[0]} = {_fmt(best.values[0])} (trial {best.number})"))
        rows.append(("Best parameters", _params_text(best.params) or "none"))
    else:
        front = sorted(study.best_trials, key=lambda t: t.number)
        rows.append(("Pareto front", f"{len(front)} trial{'s' if len(front) != 1 else ''}"))
        extra = _pareto_table(front, metrics)
    table = "\n".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f'<section id="summary">\n<h2>Summary</h2>\n<table>\n{table}\n</table>\n{extra}</section>'


def _pareto_table(front: list[FrozenTrial], metrics: list[str]) -> str:
    header = "".join(f"<th>{_esc(h)}</th>" for h in ["trial", *metrics, "parameters"])
    lines = [f"<table>\n<tr>{header}</tr>"]
    for trial in front[:_PARETO_ROWS]:
        cells = [str(trial.number), *(_fmt(v) for v in trial.values), _params_text(trial.params)]
        lines.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    if len(front) > _PARETO_ROWS:
        lines.append(f'<p class="note">… and {len(front) - _PARETO_ROWS} more (see the Pareto front).</p>')
    return "\n".join(lines) + "\n"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{name} = {_fmt(value)}" for name, value in params.items())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)
