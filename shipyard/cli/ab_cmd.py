"""``shipyard ab``: A/B tests between the versions of a served model.

``start`` assigns requests to arms on a running ``shipyard serve`` (stickily, by a request header) and
records the test; ``outcomes`` delivers per-request outcomes; ``status`` joins them to the requests each arm
answered and reads the test (estimates, the fixed-horizon test, the sequential test valid at every look);
``stop`` ends it. ``plan`` gives the outcomes each arm needs; ``simulate`` shows how each way of reading a
test behaves under continuous monitoring.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shipyard.cli.deploy_cmd import _JSON, _TOKEN, _URL
from shipyard.cli.output import console, print_json, print_table
from shipyard.config import get_settings

if TYPE_CHECKING:
    from shipyard.releases.abtests import ABTest, Report
    from shipyard.store.artifacts import ArtifactStore

app = typer.Typer(
    help="A/B tests between model versions: plan their size, check their statistics.", no_args_is_help=True
)

_KIND = typer.Option("binary", "--kind", help="binary (a conversion, 0 or 1) or numeric (any number).")
_ALPHA = typer.Option(0.05, "--alpha", help="Significance level (two-sided).")
_DEPLOYMENT = typer.Argument(..., help="The served model (deployment) name.")
_TEST = typer.Option(None, "--test", help="The test's id (default: the running one, else the latest).")
_EXPERIMENT = "ab-tests"  # where each test's tracked run goes


def _store() -> ArtifactStore:
    from shipyard.store.artifacts import ArtifactStore

    return ArtifactStore.configured(get_settings())


@app.command("start")
def start(
    deployment: str = _DEPLOYMENT,
    arms: str = typer.Option(..., "--arms", help="Version labels and weights summing to 100, control first."),
    metric: str = typer.Option(..., "--metric", help="The outcome's name (delivered with `ab outcomes`)."),
    unit: str = typer.Option(
        ..., "--unit", help="The unit of assignment: header:<name>, e.g. header:X-User-Id."
    ),
    kind: str = _KIND,
    alpha: float = _ALPHA,
    mde: float | None = typer.Option(
        None, "--mde", help="The effect the sequential test should find fastest."
    ),
    lower_is_better: bool = typer.Option(
        False, "--lower-is-better", help="A lower outcome wins (latency, churn)."
    ),
    min_samples: int = typer.Option(100, "--min-samples", help="Outcomes per arm before the first reading."),
    url: str = _URL,
    token: str | None = _TOKEN,
    as_json: bool = _JSON,
) -> None:
    """Start an A/B test on a running server: requests with the unit header go to an arm, stickily.

    Examples:

        shipyard ab start churn --arms champion=50,challenger=50 --metric conversion --unit header:X-User-Id

        shipyard ab start churn --arms a=90,b=10 --metric revenue --kind numeric --unit header:X-Session
    """
    from shipyard.releases import abtests

    parsed_arms, header = abtests.parse_arms(arms), abtests.parse_unit(unit)
    from shipyard.releases.admin import AdminClient

    server = AdminClient(url, token)
    described = server.deployment(deployment)
    test = abtests.new_test(
        deployment,
        parsed_arms,
        metric,
        header,
        served=[v["label"] for v in described["versions"]],
        kind=kind,
        alpha=alpha,
        mde=mde,
        higher_is_better=not lower_is_better,
        min_samples=min_samples,
    )
    store = _store()
    test = abtests.start(store, test)
    try:
        path = f"/admin/deployments/{deployment}/experiments/{test.id}"
        server.call("PUT", path, {"arms": test.arms, "unit": header})
    except Exception:
        abtests.save(store, abtests.stopped(test))  # the server refused it: the record must not say running
        raise
    test = abtests.save(store, _with_run(test))
    if as_json:
        print_json(test.to_json())
        return
    split = " ".join(f"{label}={weight:g}" for label, weight in test.arms.items())
    console.print(
        f"A/B test [bold]{test.id}[/] on {deployment}: {split}, by header {header}; metric {metric}",
        highlight=False,
    )


@app.command("outcomes")
def outcomes(
    deployment: str = _DEPLOYMENT,
    data: Path = typer.Argument(..., help="request_id, value (Parquet or CSV)."),
    metric: str = typer.Option(..., "--metric", help="The outcome's name, as the test names it."),
) -> None:
    """Deliver outcomes by request id (the X-Request-ID each answer carried); a later delivery wins.

    Examples:

        shipyard ab outcomes churn conversions.csv --metric conversion
    """
    from shipyard.data.sample import as_frame
    from shipyard.releases import abtests

    frame = as_frame(data, str(data))
    path = abtests.save_outcomes(_store(), deployment, metric, frame)
    console.print(f"{len(frame):,} outcomes of {metric} for {deployment} stored: {path}", highlight=False)


@app.command("status")
def status(deployment: str = _DEPLOYMENT, test_id: str | None = _TEST, as_json: bool = _JSON) -> None:
    """Read the test once more: each arm's estimate, and each treatment against the control.

    Examples:

        shipyard ab status churn

        shipyard ab status churn --json
    """

    _show(_look(deployment, test_id), as_json)


@app.command("report")
def report(
    deployment: str = _DEPLOYMENT,
    output: Path = typer.Option(..., "--output", "-o", help="The HTML file to write."),
    test_id: str | None = _TEST,
) -> None:
    """Write the test's reading as one self-contained HTML page.

    Examples:

        shipyard ab report churn -o ab.html
    """
    from shipyard.releases import abtests

    output.write_text(abtests.report_html(_look(deployment, test_id)), encoding="utf-8")
    console.print(f"report written: {output}", highlight=False)


def _look(deployment: str, test_id: str | None) -> Report:
    """Read the test once more; while it runs, keep the advanced sequential state, log the reading into the
    test's run and write its gauges for the server's /metrics."""
    from shipyard.releases import abtests

    store = _store()
    test = abtests.get(store, deployment, test_id)
    found = abtests.analyze(store, test)
    if test.state == abtests.RUNNING:
        abtests.save(store, found.test)
        _log_look(found)
        abtests.write_gauges(store, found)
    return found


@app.command("stop")
def stop(
    deployment: str = _DEPLOYMENT,
    test_id: str | None = _TEST,
    url: str = _URL,
    token: str | None = _TOKEN,
    as_json: bool = _JSON,
) -> None:
    """Stop the running test: the server routes by its traffic weights again; the last reading is kept.

    Examples:

        shipyard ab stop churn
    """
    from shipyard.errors import NotFound
    from shipyard.releases import abtests
    from shipyard.releases.admin import AdminClient

    store = _store()
    test = abtests.get(store, deployment, test_id)
    if test.state != abtests.RUNNING:
        raise NotFound(f"A/B test {test.id} on {deployment!r} is not running (stopped already)")
    # Not found there: the server no longer runs it (stopped there, or restarted without the store).
    with contextlib.suppress(NotFound):
        AdminClient(url, token).call("DELETE", f"/admin/deployments/{deployment}/experiments/{test.id}")
    report = abtests.analyze(store, test)
    report = replace(report, test=abtests.save(store, abtests.stopped(report.test)))
    _log_look(report, final=True)
    abtests.write_gauges(store, report)
    _show(report, as_json)


@app.command("list")
def list_tests(deployment: str = _DEPLOYMENT, as_json: bool = _JSON) -> None:
    """The deployment's A/B tests, oldest first.

    Examples:

        shipyard ab list churn
    """
    from shipyard.cli.output import fmt_time
    from shipyard.releases import abtests

    found = abtests.tests(_store(), deployment)
    if as_json:
        print_json([t.to_json() for t in found])
        return
    rows = [
        (t.id, t.state, " ".join(f"{a}={w:g}" for a, w in t.arms.items()), t.metric, fmt_time(t.created_at))
        for t in found
    ]
    print_table(f"A/B tests of {deployment}", ["id", "state", "arms", "metric", "started (UTC)"], rows)


def _with_run(test: ABTest) -> ABTest:
    """``test`` with a tracked run of its own: its settings as params (the run records each reading)."""
    import shipyard

    with shipyard.start_run(
        _EXPERIMENT,
        f"{test.deployment}-{test.id[:8]}",
        tags={"ab_test": test.id, "deployment": test.deployment},
        log_system_metrics=False,
    ) as run:
        run.log_params(
            {
                "deployment": test.deployment,
                "arms": ",".join(f"{a}={w:g}" for a, w in test.arms.items()),
                "metric": test.metric,
                "kind": test.kind,
                "unit": test.unit,
                "alpha": test.alpha,
                "mde": test.mde,
                "higher_is_better": test.higher_is_better,
            }
        )
        return replace(test, run_id=run.run_id)


def _log_look(report: Report, final: bool = False) -> None:
    """Each arm's estimate and each comparison's p-values into the test's run, one step a look."""
    import shipyard

    test = report.test
    if test.run_id is None:
        return
    looks = max((c.sequential.looks for c in report.comparisons), default=0)
    values: dict[str, float] = {}
    for arm, estimate in report.estimates.items():
        values[f"{arm}.n"] = estimate.n
        values[f"{arm}.exposures"] = report.exposures[arm]
        if math.isfinite(estimate.mean):
            values[f"{arm}.{test.metric}"] = estimate.mean
    for comparison in report.comparisons:
        values[f"{comparison.arm}.always_valid_p"] = comparison.sequential.p_value
        if math.isfinite(comparison.fixed.p_value):
            values[f"{comparison.arm}.fixed_p"] = comparison.fixed.p_value
    values["unmatched_outcomes"] = report.unmatched
    with shipyard.start_run(run_id=test.run_id, log_system_metrics=False) as run:
        run.log_metrics(values, step=looks)
        run.set_tags({"decision": report.decision, **({"state": "stopped"} if final else {})})


def _show(report: Report, as_json: bool) -> None:
    if as_json:
        print_json(report.to_json())
        return
    test = report.test
    rows = []
    for arm, estimate in report.estimates.items():
        role = "control" if arm == test.control else "treatment"
        interval = "" if not math.isfinite(estimate.low) else f"[{estimate.low:.4g}, {estimate.high:.4g}]"
        mean = "" if not math.isfinite(estimate.mean) else f"{estimate.mean:.4g}"
        rows.append((arm, role, f"{report.exposures[arm]:,}", f"{estimate.n:,}", mean, interval))
    print_table(
        f"A/B test {test.id} on {test.deployment} ({test.state}): {test.metric}, {test.kind}",
        ["arm", "role", "requests", "outcomes", test.metric, "95% interval"],
        rows,
    )
    rows = []
    for c in report.comparisons:
        seq = c.sequential
        rows.append(
            (
                f"{c.arm} - {test.control}",
                "" if not math.isfinite(c.fixed.difference) else f"{c.fixed.difference:+.4g}",
                "" if not math.isfinite(c.fixed.p_value) else f"{c.fixed.p_value:.4g}",
                f"{seq.p_value:.4g}",
                "" if not math.isfinite(seq.low) else f"[{seq.low:.4g}, {seq.high:.4g}]",
            )
        )
    print_table(
        None,
        ["comparison", "difference", "p (fixed horizon)", "p (always valid)", "confidence sequence"],
        rows,
    )
    if report.unmatched:
        console.print(
            f"{report.unmatched:,} outcomes name requests this test never assigned: not joined",
            highlight=False,
        )
    console.print(f"decision: {report.decision}", highlight=False)


@app.command("plan")
def plan(
    baseline: float = typer.Option(..., "--baseline", help="The control's rate (binary) or mean (numeric)."),
    mde: float = typer.Option(
        ..., "--mde", help="The smallest change worth finding (absolute, see --relative)."
    ),
    kind: str = _KIND,
    sd: float | None = typer.Option(
        None, "--sd", help="The outcome's standard deviation (numeric outcomes)."
    ),
    relative: bool = typer.Option(
        False, "--relative", help="--mde is a fraction of the baseline (0.05: 5%)."
    ),
    alpha: float = _ALPHA,
    power: float = typer.Option(
        0.8, "--power", help="Chance of finding an effect of --mde when it is there."
    ),
    as_json: bool = _JSON,
) -> None:
    """Outcomes needed per arm to find an effect of --mde, read once (fixed horizon) or any time (sequential).

    Examples:

        shipyard ab plan --baseline 0.1 --mde 0.01

        shipyard ab plan --kind numeric --baseline 42 --sd 12 --mde 0.5 --power 0.9
    """
    from shipyard.releases.statistics import plan as make_plan

    found = make_plan(kind, baseline, mde, sd=sd, alpha=alpha, power=power, relative=relative)
    if as_json:
        print_json(asdict(found))
        return
    change = f"{found.baseline:g} -> {found.baseline + found.mde:g}"
    print_table(
        f"A/B plan: {found.kind} outcome, {change}, alpha {found.alpha:g}, power {found.power:.0%}",
        ["test", "outcomes per arm", "read"],
        [
            ("fixed horizon", f"{found.fixed:,}", "once, when every arm has them"),
            ("sequential (mSPRT)", f"{found.sequential:,}", "at any time; may stop sooner"),
        ],
    )


@app.command("simulate")
def simulate(
    baseline: float = typer.Option(0.1, "--baseline", help="The control's rate (binary) or mean (numeric)."),
    effect: float = typer.Option(0.0, "--effect", help="The true difference (0: an A/A test)."),
    kind: str = _KIND,
    sd: float = typer.Option(1.0, "--sd", help="The outcome's standard deviation (numeric outcomes)."),
    n: int = typer.Option(20_000, "--n", help="Outcomes per arm in each simulated test."),
    looks: int = typer.Option(200, "--looks", help="Times each test is read, at equal steps."),
    runs: int = typer.Option(1000, "--runs", min=1, max=1_000_000, help="Simulated tests."),
    tau: float | None = typer.Option(
        None, "--tau", help="The sequential test's mixture scale (default: 0.1 sd)."
    ),
    alpha: float = _ALPHA,
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = _JSON,
) -> None:
    """How often each way of reading a test rejects: false positives (A/A) or power (with --effect).
    Without options: 1,000 A/A tests of a 10% rate, each read 200 times.

    Examples:

        shipyard ab simulate

        shipyard ab simulate --effect 0.01 --n 14751 --looks 1 --runs 20000
    """
    from shipyard.releases.statistics import simulate as run

    found = run(
        kind,
        baseline,
        effect=effect,
        n_per_arm=n,
        looks=looks,
        runs=runs,
        sd=sd,
        alpha=alpha,
        tau=tau,
        seed=seed,
    )
    if as_json:
        print_json(asdict(found))
        return
    what = "false positives" if effect == 0 else "power"
    test = "A/A" if effect == 0 else "A/B"
    print_table(
        f"{runs:,} simulated {test} tests, {n:,} outcomes an arm, read {looks} times",
        ["reading", what],
        [
            ("sequential (mSPRT), at every look", f"{found.sequential:.1%}"),
            ("fixed-horizon test at every look, stop at p < alpha", f"{found.naive:.1%}"),
            ("fixed-horizon test once, at the end", f"{found.fixed:.1%}"),
        ],
    )
    if effect == 0:
        console.print(f"alpha is {alpha:g}: a reading above it declares winners between identical versions")
