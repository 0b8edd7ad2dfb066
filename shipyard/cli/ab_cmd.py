"""``shipyard ab``: A/B tests between model versions — planning their size and checking their statistics.

``plan`` gives the outcomes each arm needs for the fixed-horizon test and for the sequential test (which
may be read at any time); ``simulate`` runs A/A (and, with ``--effect``, A/B) tests to show how each way
of reading a test behaves under continuous monitoring.
"""

from __future__ import annotations

from dataclasses import asdict

import typer

from shipyard.cli.output import console, print_json, print_table

app = typer.Typer(
    help="A/B tests between model versions: plan their size, check their statistics.", no_args_is_help=True
)

_KIND = typer.Option("binary", "--kind", help="binary (a conversion, 0 or 1) or numeric (any number).")
_ALPHA = typer.Option(0.05, "--alpha", help="Significance level (two-sided).")
_JSON = typer.Option(False, "--json", help="Machine-readable output.")


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
