"""Releasing model versions safely: A/B tests with statistics that survive continuous monitoring.

:mod:`shipyard.releases.statistics` holds the estimates, the fixed-horizon and sequential (mSPRT) tests,
sample-size plans and the simulation that checks them.
"""

from shipyard.releases.statistics import (
    Arm,
    Estimate,
    FixedHorizon,
    Plan,
    Sequential,
    Simulation,
    estimate,
    fixed_horizon,
    look,
    plan,
    simulate,
    start_sequential,
)

__all__ = [
    "Arm",
    "Estimate",
    "FixedHorizon",
    "Plan",
    "Sequential",
    "Simulation",
    "estimate",
    "fixed_horizon",
    "look",
    "plan",
    "simulate",
    "start_sequential",
]
