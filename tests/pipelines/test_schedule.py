"""Pipeline schedules: due logic (pure, fixed times), stored schedules on every backend, the scheduler."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from shipyard import AlreadyExists, InvalidInput, NotFound
from shipyard.config import Settings
from shipyard.pipelines import (
    Catchup,
    PipelineSpec,
    ScheduleClient,
    Scheduler,
    compile_pipeline,
    due_ticks,
    next_tick,
)
from shipyard.pipelines.executors import PipelineRunResult, StepStatus
from shipyard.pipelines.schedule import to_ms
from shipyard.store.db import HEAD_REVISION, MetadataStore
from shipyard.store.sql.schedules import SqlScheduleStore
from shipyard.tracking import TrackingClient, get_client, start_run
from tests.pipelines import executor_components
from tests.store.old_stores import sqlite_store_at

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday, on the hour
HOUR = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def spec() -> PipelineSpec:
    return compile_pipeline(executor_components.realistic)


@pytest.fixture
def client(settings: Settings) -> ScheduleClient:
    return ScheduleClient(TrackingClient(settings))


# ---------------------------------------------------------------------- pure due logic
def test_next_tick_is_strictly_after_and_in_utc() -> None:
    assert next_tick("0 * * * *", "UTC", T0) == T0 + HOUR
    assert next_tick("0 * * * *", "UTC", T0 + timedelta(microseconds=1)) == T0 + HOUR
    assert next_tick("*/15 * * * *", "Asia/Kolkata", T0 + timedelta(minutes=1)).tzinfo is UTC


def test_cron_is_read_in_the_schedules_timezone_across_dst() -> None:
    # 09:00 Berlin is 08:00 UTC in winter (CET) and 07:00 UTC after the March change (CEST).
    assert next_tick("0 9 * * *", "Europe/Berlin", utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 7)
    assert next_tick("0 9 * * *", "Europe/Berlin", utc(2026, 3, 27, 12)) == utc(2026, 3, 28, 8)
    # A time that does not exist (02:30 when clocks jump 02:00 -> 03:00) fires at the jump.
    assert next_tick("30 2 * * *", "America/New_York", utc(2024, 3, 10, 0)) == utc(2024, 3, 10, 7)


def test_repeated_autumn_hour_fires_once_for_a_fixed_hour_and_twice_for_hourly() -> None:
    ny = "America/New_York"  # 2024-11-03 02:00 EDT -> 01:00 EST: 01:00-01:59 happens twice
    first = next_tick("30 1 * * *", ny, utc(2024, 11, 2, 12))
    assert first == utc(2024, 11, 3, 5, 30)  # 01:30 EDT
    assert next_tick("30 1 * * *", ny, first) == utc(2024, 11, 4, 6, 30)  # not 01:30 EST the same night
    ticks = [utc(2024, 11, 3, 3, 30)]
    for _ in range(4):
        ticks.append(next_tick("0 * * * *", ny, ticks[-1]))
    assert ticks[1:] == [utc(2024, 11, 3, h) for h in (4, 5, 6, 7)]  # an hour apart in UTC throughout


def test_once_after_the_repeated_autumn_hour_runs_the_tick_that_fired() -> None:
    # Due since 01:30 EDT; at 01:00 EST (06:00 UTC) the skipped 01:30 EST is still ahead: not a due tick.
    ticks, upcoming = due_ticks(
        "30 1 * * *", "America/New_York", utc(2024, 11, 2, 5, 30), utc(2024, 11, 3, 6), "once"
    )
    assert (ticks, upcoming) == ([utc(2024, 11, 3, 5, 30)], utc(2024, 11, 4, 6, 30))


@pytest.mark.parametrize(
    ("catchup", "now", "ticks", "upcoming"),
    [
        (Catchup.ONCE, T0 - HOUR, [], T0),  # nothing due yet
        (Catchup.ONCE, T0 + timedelta(minutes=5), [T0], T0 + HOUR),  # on time
        (Catchup.ONCE, T0 + 5 * HOUR + timedelta(minutes=5), [T0 + 5 * HOUR], T0 + 6 * HOUR),
        (Catchup.ALL, T0 + 2 * HOUR, [T0, T0 + HOUR, T0 + 2 * HOUR], T0 + 3 * HOUR),
        (Catchup.SKIP, T0 + timedelta(minutes=59), [T0], T0 + HOUR),
        (Catchup.SKIP, T0 + 3 * HOUR + timedelta(minutes=1), [], T0 + 4 * HOUR),
    ],
)
def test_catch_up_policies(
    catchup: Catchup, now: datetime, ticks: list[datetime], upcoming: datetime
) -> None:
    assert due_ticks("0 * * * *", "UTC", T0, now, catchup) == (ticks, upcoming)


def test_catch_up_all_is_capped_per_pass_and_resumes_where_it_stopped() -> None:
    now = T0 + 10 * HOUR
    first, upcoming = due_ticks("0 * * * *", "UTC", T0, now, "all", limit=4)
    assert first == [T0 + i * HOUR for i in range(4)] and upcoming == T0 + 4 * HOUR
    second, upcoming = due_ticks("0 * * * *", "UTC", upcoming, now, "all", limit=100)
    assert second[0] == T0 + 4 * HOUR and len(second) == 7 and upcoming == T0 + 11 * HOUR


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InvalidInput, match="no timezone"):
        due_ticks("0 * * * *", "UTC", T0, datetime(2026, 1, 5, 12))


CRONS = ["* * * * *", "*/7 * * * *", "0 * * * *", "30 1 * * *", "0 9 * * 1-5", "15 2,14 1 * *"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    zone=st.sampled_from(ZONES),
    start=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    late=st.integers(min_value=-3 * 86400, max_value=40 * 86400),
    catchup=st.sampled_from(list(Catchup)),
)
def test_due_ticks_properties(cron: str, zone: str, start: datetime, late: int, catchup: Catchup) -> None:
    next_run_at = next_tick(cron, zone, start)
    now = next_run_at + timedelta(seconds=late)
    ticks, upcoming = due_ticks(cron, zone, next_run_at, now, catchup, limit=50)
    assert all(next_run_at <= t <= now for t in ticks) and ticks == sorted(set(ticks))
    assert upcoming > now or (catchup is Catchup.ALL and len(ticks) == 50)
    if next_run_at > now:
        assert (ticks, upcoming) == ([], next_run_at)
        return
    on_time = next_tick(cron, zone, next_run_at) > now
    if catchup is Catchup.ONCE:  # one run, for the latest tick due
        [latest] = ticks
        assert next_tick(cron, zone, latest - timedelta(seconds=1)) == latest < upcoming
        assert next_tick(cron, zone, latest) == upcoming
    elif catchup is Catchup.SKIP:
        assert len(ticks) == (1 if on_time else 0)
    else:
        assert ticks[0] == next_run_at and (upcoming == next_tick(cron, zone, ticks[-1]))
    if upcoming > now:  # the new next run is the first tick after now: nothing is lost or run twice
        assert upcoming == next_tick(cron, zone, now)


@hypothesis_settings(max_examples=100, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    zone=st.sampled_from(ZONES),
    after=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
)
def test_next_tick_always_moves_forward(cron: str, zone: str, after: datetime) -> None:
    tick = next_tick(cron, zone, after)
    assert tick > after and next_tick(cron, zone, tick) > tick


# ---------------------------------------------------------------------- registration and validation
def test_register_stores_the_spec_and_the_given_parameters(
    client: ScheduleClient, spec: PipelineSpec
) -> None:
    created = client.create(spec, "0 * * * *", parameters={"n": "12"}, now=T0 + timedelta(minutes=1))
    assert created.name == "realistic" and created.pipeline_name == "realistic"
    assert created.parameters == {"n": 12}  # coerced; defaults are left to the stored spec
    assert created.next_run_at == to_ms(T0 + HOUR) and created.catchup is Catchup.ONCE
    assert client.get("realistic") == created and client.get("realistic").spec == spec


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "61 * * * *"}, r"cron expression '61 \* \* \* \*' is invalid: .*out of range"),
        ({"cron": "every hour"}, r"cron expression 'every hour' is invalid: .*columns"),
        ({"cron": "0 0 31 2 *"}, r"cron expression '0 0 31 2 \*' never fires after"),  # it parses
        ({"timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"parameters": {"nope": "1"}}, "no parameter 'nope'; valid parameters: n"),
        ({"parameters": {"n": "ten"}}, "parameter 'n' expects int, got 'ten'"),
        ({"catchup": "sometimes"}, "catch-up policy 'sometimes' is not one of: once, all, skip"),
        ({"executor": "k8s"}, "executor 'k8s' is not available"),
        ({"name": ""}, "schedule name must be a non-empty string"),
        ({"name": "x" * 201}, "must be at most 200 characters"),
    ],
)
def test_bad_registrations_name_the_bad_thing(
    client: ScheduleClient, spec: PipelineSpec, kwargs: dict[str, Any], message: str
) -> None:
    args = {"cron": "0 * * * *", **kwargs}
    with pytest.raises(InvalidInput, match=message):
        client.create(spec, **args)
    assert client.list() == []


def test_missing_required_parameter_is_named(client: ScheduleClient) -> None:
    with pytest.raises(InvalidInput, match="needs parameter 'marker'"):
        client.create(compile_pipeline(executor_components.retrying), "0 * * * *")


# ---------------------------------------------------------------------- stored schedules, every backend
def test_schedule_store_contract(tracking_backend_settings: Settings, spec: PipelineSpec) -> None:
    client = ScheduleClient(TrackingClient(tracking_backend_settings))
    client.create(spec, "0 * * * *", name="hourly", now=T0)
    client.create(
        spec, "0 9 * * *", name="daily", timezone="Europe/Berlin", catchup="all", cache=False, now=T0
    )
    with pytest.raises(AlreadyExists, match="'hourly' already exists"):
        client.create(spec, "*/5 * * * *", name="hourly")
    assert [s.name for s in client.list()] == ["daily", "hourly"]
    assert client.get("daily").catchup is Catchup.ALL and client.get("daily").cache is False

    assert [s.name for s in client.due(T0 + HOUR)] == ["hourly"]
    assert client.next_wake() == T0 + HOUR
    paused = client.pause("hourly")
    assert paused.paused and client.due(T0 + 30 * HOUR) == [client.get("daily")]
    resumed = client.resume("hourly", now=T0 + 30 * HOUR + timedelta(minutes=10))
    assert not resumed.paused and resumed.next_run_at == to_ms(T0 + 31 * HOUR)  # the pause is not replayed

    client.delete("daily")
    with pytest.raises(NotFound, match=r"no schedule named 'daily'; schedules: hourly"):
        client.get("daily")
    with pytest.raises(NotFound, match="schedules: hourly"):
        client.delete("daily")
    with pytest.raises(NotFound, match="schedules: hourly"):
        client.pause("nightly")


def test_concurrent_claims_of_one_due_schedule_have_exactly_one_winner(
    backend_settings: Settings, spec: PipelineSpec
) -> None:
    first = ScheduleClient(TrackingClient(backend_settings))
    first.create(spec, "0 * * * *", name="contended", now=T0 - HOUR)
    # Separate engines, as separate scheduler processes would have.
    stores = [MetadataStore(backend_settings.db_url) for _ in range(4)]
    clients = [ScheduleClient(SqlScheduleStore(store)) for store in stores]
    seen = [c.get("contended") for c in clients]
    barrier = threading.Barrier(len(clients))
    results: list[list[datetime] | None] = [None] * len(clients)

    def claim(i: int) -> None:
        barrier.wait()
        results[i] = clients[i].claim(seen[i], T0 + timedelta(minutes=1))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.dispose()
    assert sorted(results, key=lambda r: r is None) == [[T0], None, None, None]
    assert first.get("contended").next_run_at == to_ms(T0 + HOUR)


def test_a_paused_schedule_cannot_be_claimed_with_a_stale_record(
    client: ScheduleClient, spec: PipelineSpec
) -> None:
    stale = client.create(spec, "0 * * * *", now=T0 - HOUR)
    client.pause(stale.name)
    assert client.claim(stale, T0) is None


def test_store_at_revision_0003_is_upgraded_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite_store_at(path, "0003")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO experiments VALUES ('e1', 'kept', NULL, '/a', 'active', 1, 1)")
    store = MetadataStore(f"sqlite:///{path}")
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
        assert "pipeline_schedules" in sa.inspect(conn).get_table_names()
        assert conn.exec_driver_sql("SELECT name FROM experiments").scalar() == "kept"
    ScheduleClient(SqlScheduleStore(store)).create(compile_pipeline(executor_components.realistic), "@daily")
    store.dispose()


# ---------------------------------------------------------------------- the scheduler
class TrackedFake:
    """An executor that only opens and closes a tracked run (run names stay unique per experiment)."""

    def __init__(self, settings: Settings, fail: bool = False) -> None:
        self.settings, self.fail = settings, fail
        self.calls: list[dict[str, Any]] = []

    def run(
        self,
        spec: PipelineSpec,
        parameters: dict[str, Any] | None = None,
        *,
        experiment: str | None = None,
        run_name: str | None = None,
        cache: bool = True,
        tags: Mapping[str, str] | None = None,
    ) -> PipelineRunResult:
        with start_run(experiment or spec.name, run_name, tags=tags, settings=self.settings) as run:
            pass
        self.calls.append(
            {"parameters": parameters, "run_name": run_name, "cache": cache, "run_id": run.run_id}
        )
        return PipelineRunResult(run.run_id, StepStatus.FAILED if self.fail else StepStatus.SUCCEEDED, {})


def test_scheduler_runs_each_catch_up_policy(
    client: ScheduleClient, settings: Settings, spec: PipelineSpec
) -> None:
    for catchup in Catchup:
        client.create(spec, "0 * * * *", name=catchup.value, catchup=catchup, now=T0 - HOUR)
    fake = TrackedFake(settings)
    scheduler = Scheduler(settings, executor_factory=lambda name: fake)
    done = scheduler.run_pending(T0 + 2 * HOUR + timedelta(minutes=3))
    by_schedule: dict[str, list[datetime]] = {}
    for run in done:
        assert run.status == "succeeded" and run.run_id
        by_schedule.setdefault(run.schedule, []).append(run.tick)
    assert by_schedule == {"all": [T0, T0 + HOUR, T0 + 2 * HOUR], "once": [T0 + 2 * HOUR]}
    assert client.get("skip").next_run_at == client.get("once").next_run_at == to_ms(T0 + 3 * HOUR)
    assert scheduler.run_pending(T0 + 2 * HOUR + timedelta(minutes=4)) == []  # claimed: nothing left
    assert [c["run_name"] for c in fake.calls[:3]] == [
        "all-20260105-1000",
        "all-20260105-1100",
        "all-20260105-1200",
    ]


def test_run_name_clash_takes_a_suffix_and_runs_are_tagged(
    client: ScheduleClient, settings: Settings, spec: PipelineSpec
) -> None:
    client.create(spec, "0 * * * *", name="nightly", experiment="sched", parameters={"n": "3"}, now=T0 - HOUR)
    with start_run("sched", "nightly-20260105-1000", settings=settings):
        pass  # e.g. a schedule deleted and registered again
    fake = TrackedFake(settings)
    [run] = Scheduler(settings, executor_factory=lambda name: fake).run_pending(T0)
    assert fake.calls == [
        {"parameters": {"n": 3}, "run_name": "nightly-20260105-1000-2", "cache": True, "run_id": run.run_id}
    ]
    tracked = get_client(settings).get_run(run.run_id)
    assert tracked.tags["shipyard.schedule"] == "nightly"
    stored = client.get("nightly")
    assert (stored.last_run_id, stored.last_status) == (run.run_id, "succeeded")


def test_a_schedule_that_cannot_start_is_recorded_failed_and_the_pass_goes_on(
    client: ScheduleClient, settings: Settings, spec: PipelineSpec
) -> None:
    client.create(spec, "0 * * * *", name="a-broken", now=T0 - 2 * HOUR)
    client.create(spec, "0 * * * *", name="b-fine", now=T0 - HOUR)
    fake = TrackedFake(settings)
    executors = iter([InvalidInput("executor 'ray' is not available here"), fake])

    def factory(name: str) -> TrackedFake:
        found = next(executors)
        if isinstance(found, Exception):
            raise found
        return found

    done = Scheduler(settings, executor_factory=factory).run_pending(T0)
    assert [(r.schedule, r.status) for r in done] == [("a-broken", "failed"), ("b-fine", "succeeded")]
    assert done[0].run_id is None and "not available here" in (done[0].error or "")
    assert (client.get("a-broken").last_status, client.get("a-broken").last_run_id) == ("failed", None)


def test_serve_stops_on_the_event_and_wakes_for_the_next_tick(
    client: ScheduleClient, settings: Settings, spec: PipelineSpec
) -> None:
    now = [T0]
    client.create(spec, "0 * * * *", now=T0 - HOUR)
    fake = TrackedFake(settings)
    scheduler = Scheduler(settings, executor_factory=lambda name: fake, clock=lambda: now[0])
    ran: list[str] = []
    scheduler.serve(poll_interval_s=0.01, max_iterations=3, on_run=lambda run: ran.append(run.schedule))
    assert ran == ["realistic"]  # one tick due, run once over three passes

    stop = threading.Event()
    thread = threading.Thread(target=scheduler.serve, kwargs={"poll_interval_s": 60, "stop_event": stop})
    thread.start()
    time.sleep(0.2)  # let it reach the wait: the next tick is an hour away on the injected clock
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_scheduler_runs_real_pipelines_and_a_failing_one_does_not_stop_the_pass(
    client: ScheduleClient, settings: Settings
) -> None:
    client.create(
        compile_pipeline(executor_components.failing), "0 * * * *", name="broken", now=T0 - 2 * HOUR
    )
    client.create(
        compile_pipeline(executor_components.realistic), "0 * * * *", parameters={"n": "12"}, now=T0 - HOUR
    )
    done = Scheduler(settings).run_pending(T0 + timedelta(minutes=1))
    assert [(r.schedule, r.status) for r in done] == [("broken", "failed"), ("realistic", "succeeded")]
    tracking = get_client(settings)
    for run in done:
        stored = client.get(run.schedule)
        assert (stored.last_run_id, stored.last_status) == (run.run_id, run.status)
        tracked = tracking.get_run(run.run_id or "")
        assert (
            tracked.name == f"{run.schedule}-20260105-1000"
            and tracked.tags["shipyard.schedule"] == run.schedule
        )
    assert tracking.get_run(done[1].run_id or "").params["n"] == "12"
