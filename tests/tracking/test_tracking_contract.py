"""The tracking contract, run against every metadata backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import shipyard
from shipyard import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    RunNotActive,
    RunStatus,
    Settings,
)
from shipyard.tracking.chunks import Series
from shipyard.tracking.client import TrackingClient


def test_run_lifecycle_params_metrics_tags(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("churn", name="rf-1", settings=tracking_backend_settings) as run:
        run.log_params({"model": "rf", "depth": 5})
        run.log_param("model", "rf")  # same value again is fine
        for step in range(10):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"acc": 0.91, "f1": 0.88}, step=3)
        run.set_tag("stage", "dev")
        assert run.status is RunStatus.RUNNING
    stored = shipyard.get_client(tracking_backend_settings).get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED
    assert stored.end_time is not None and stored.end_time >= stored.start_time
    assert stored.params == {"model": "rf", "depth": "5"}
    assert stored.metrics == {"loss": pytest.approx(0.1), "acc": 0.91, "f1": 0.88}
    assert stored.tags == {"stage": "dev"}
    history = shipyard.get_client(tracking_backend_settings).metric_history(run.run_id, "loss")
    assert [p.step for p in history] == list(range(10))
    assert history[-1].value == pytest.approx(0.1)


def test_latest_metric_is_highest_step_not_last_logged(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        run.log_metric("m", 5.0, step=10)
        run.flush()
        run.log_metric("m", 1.0, step=2)  # a late point for an earlier step
    assert shipyard.get_client(tracking_backend_settings).get_run(run.run_id).metrics["m"] == 5.0


def test_nan_and_inf_round_trip(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        run.log_metric("x", float("nan"), step=0)
        run.log_metric("x", float("inf"), step=1)
        run.log_metric("x", float("-inf"), step=2)
        run.log_metric("y", float("nan"))
    client = shipyard.get_client(tracking_backend_settings)
    values = [p.value for p in client.metric_history(run.run_id, "x")]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf
    assert math.isnan(client.get_run(run.run_id).metrics["y"])


def test_failed_and_killed_status(tracking_backend_settings: Settings) -> None:
    with (
        pytest.raises(ZeroDivisionError),
        shipyard.start_run("e", settings=tracking_backend_settings) as failing,
    ):
        failing.log_metric("before", 1.0)
        raise ZeroDivisionError
    with (
        pytest.raises(KeyboardInterrupt),
        shipyard.start_run("e", settings=tracking_backend_settings) as killed,
    ):
        raise KeyboardInterrupt
    client = shipyard.get_client(tracking_backend_settings)
    assert client.get_run(failing.run_id).status is RunStatus.FAILED
    assert client.get_run(failing.run_id).metrics == {"before": 1.0}  # points before the crash are kept
    assert client.get_run(killed.run_id).status is RunStatus.KILLED


def test_nested_runs_and_lookup_by_name(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("nest", name="parent", settings=tracking_backend_settings) as parent:
        with shipyard.start_run(
            "nest", name="child", parent=parent, settings=tracking_backend_settings
        ) as child:
            assert shipyard.active_run() is child
        assert shipyard.active_run() is parent
    client = shipyard.get_client(tracking_backend_settings)
    assert client.get_run(child.run_id).parent_run_id == parent.run_id
    assert client.get_run_by_name("child", "nest").run_id == child.run_id
    assert client.find_run("parent").run_id == parent.run_id
    children = client.search_runs("nest", f"attributes.parent_run_id = '{parent.run_id}'")
    assert [r.run_id for r in children] == [child.run_id]


def test_param_change_is_a_conflict(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        run.log_param("lr", 0.1)
        with pytest.raises(Conflict, match="'lr'"):
            run.log_param("lr", 0.2)
        run.log_param("lr", 0.1)


def test_a_param_another_writer_set_refuses_the_change_and_keeps_the_batch(
    tracking_backend_settings: Settings,
) -> None:
    """Against a server an active run's params go with its next batch: the refusal comes from that flush
    (embedded, from log_params itself), names the param, and the points logged beside it are stored."""
    other = TrackingClient(tracking_backend_settings)  # as another process holding the same run
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        other.log_params(other.run_pk(run.run_id), {"lr": "0.1"})
        run.log_metric("m", 1.0)
        if run.client.buffers_params:
            run.log_params({"lr": 0.2, "depth": 3})
            with pytest.raises(Conflict, match="'lr' is already '0.1'"):
                run.flush()
        else:
            with pytest.raises(Conflict, match="'lr' is already '0.1'"):
                run.log_params({"lr": 0.2, "depth": 3})
        run.flush()
        assert other.get_run(run.run_id).metrics == {"m": 1.0}
        run.log_params({"epochs": 5})
        run.log_metric("m", 2.0, step=1)
        if run.client.buffers_params:
            other.log_params(other.run_pk(run.run_id), {"epochs": "6"})
            with pytest.raises(Conflict, match="'epochs'"):
                run.end()  # ends with its points all the same, then says which param was refused
        else:
            run.end()
        assert run.status is RunStatus.FINISHED
    stored = other.get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED
    assert stored.metrics == {"m": 2.0}
    # The refused call's params go together, as an embedded log_params call is one transaction.
    assert stored.params["lr"] == "0.1" and "depth" not in stored.params
    assert stored.params["epochs"] == ("6" if run.client.buffers_params else "5")


def test_buffered_params_reach_the_store_without_a_flush(tracking_backend_settings: Settings) -> None:
    import time

    other = TrackingClient(tracking_backend_settings)
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        run.log_params({"model": "rf"})
        deadline = time.monotonic() + 10 * tracking_backend_settings.flush_interval
        while other.get_run(run.run_id).params != {"model": "rf"}:
            assert time.monotonic() < deadline, "params never reached the store"
            time.sleep(0.05)
        with pytest.raises(InvalidInput, match="param"):
            run.log_params({"": 1})  # checked at the call, buffered or not


def test_logging_to_a_finished_run_raises(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        pass
    for call in (
        lambda: run.log_metric("a", 1.0),
        lambda: run.log_param("a", 1),
        lambda: run.set_tag("a", 1),
        lambda: run.log_metrics({"a": 1.0}),
    ):
        with pytest.raises(RunNotActive, match=run.run_id):
            call()


def test_unknown_ids_raise_not_found_naming_them(tracking_backend_settings: Settings) -> None:
    client = shipyard.get_client(tracking_backend_settings)
    with pytest.raises(NotFound, match="deadbeef"):
        client.get_run("deadbeef")
    with pytest.raises(NotFound, match="nope"):
        client.get_experiment("nope")
    with pytest.raises(NotFound, match="missing-parent"):
        shipyard.start_run("e", parent="missing-parent", settings=tracking_backend_settings)
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        run.log_metric("acc", 1.0)
    with pytest.raises(NotFound, match="has no metric 'loss'; it has: acc"):
        client.metric_history(run.run_id, "loss")


def test_non_numeric_metric_names_the_key(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        for bad in ("0.5", None, [1.0], True):
            with pytest.raises(InvalidInput, match="'acc'"):
                run.log_metric("acc", bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="key"):
            run.log_metric("bad\nkey", 1.0)
        with pytest.raises(InvalidInput, match="step"):
            run.log_metric("acc", 1.0, step=1.5)  # type: ignore[arg-type]


def test_numpy_values_are_accepted(tracking_backend_settings: Settings) -> None:
    np = pytest.importorskip("numpy")
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        run.log_metric("a", np.float32(0.5), step=np.int64(3))
        run.log_metric("b", np.int64(7))
    assert shipyard.get_client(tracking_backend_settings).get_run(run.run_id).metrics == {"a": 0.5, "b": 7.0}


def test_experiments_create_list_delete(tracking_backend_settings: Settings) -> None:
    client = TrackingClient(tracking_backend_settings)
    exp = client.create_experiment("alpha", description="first")
    with pytest.raises(AlreadyExists, match="alpha"):
        client.create_experiment("alpha")
    assert [e.name for e in client.list_experiments()] == ["alpha"]
    client.delete_experiment("alpha")
    assert client.list_experiments() == []
    assert client.list_experiments(include_deleted=True)[0].experiment_id == exp.experiment_id
    with pytest.raises(Conflict, match="deleted"):
        client.get_or_create_experiment("alpha")
    client.restore_experiment("alpha")
    assert client.get_or_create_experiment("alpha").experiment_id == exp.experiment_id


def test_latest_points_carry_their_step_and_time(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        run.log_metric("loss", 0.5, step=7)
        run.log_metric("loss", 0.9, step=3)  # a late point for an earlier step is not the latest
        run.log_metric("nan", float("nan"), step=2)
    with shipyard.start_run("e", settings=tracking_backend_settings) as bare:
        pass
    client = shipyard.get_client(tracking_backend_settings)
    found = client.backend.latest_metrics([run.run_id, bare.run_id, "0" * 32])
    assert set(found) == {run.run_id}
    loss, nan = found[run.run_id]
    assert (loss.key, loss.value, loss.step) == ("loss", 0.5, 7) and loss.timestamp > 0
    assert (nan.key, nan.step) == ("nan", 2) and math.isnan(nan.value)
    assert client.backend.latest_metrics([]) == {}
    many = [f"{i:032x}" for i in range(1_500)] + [run.run_id]  # more ids than one statement takes
    assert [m.key for m in client.backend.latest_metrics(many)[run.run_id]] == ["loss", "nan"]


def test_a_renamed_experiment_keeps_its_id_and_runs(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("alpha", name="r1", settings=tracking_backend_settings) as run:
        run.log_metric("m", 1.0)
    client = shipyard.get_client(tracking_backend_settings)
    before = client.get_experiment("alpha")
    renamed = client.rename_experiment("alpha", "beta")
    assert (renamed.experiment_id, renamed.name) == (before.experiment_id, "beta")
    assert client.get_run(run.run_id).experiment_id == before.experiment_id
    assert client.get_run_by_name("r1", "beta").run_id == run.run_id
    with pytest.raises(NotFound, match="'alpha'"):
        client.get_experiment("alpha")
    with shipyard.start_run("alpha", settings=tracking_backend_settings) as fresh:
        pass  # the old name is free again, for a new experiment
    assert client.get_run(fresh.run_id).experiment_id != before.experiment_id
    with pytest.raises(AlreadyExists, match="'alpha'"):
        client.rename_experiment("beta", "alpha")
    with pytest.raises(InvalidInput):
        client.rename_experiment("beta", "")
    client.delete_experiment("beta")
    with pytest.raises(Conflict, match="deleted"):
        client.rename_experiment(before.experiment_id, "gamma")


def test_duplicate_run_name_in_experiment_is_refused(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("e", name="same", settings=tracking_backend_settings):
        pass
    with pytest.raises(AlreadyExists, match="same"):
        shipyard.start_run("e", name="same", settings=tracking_backend_settings)
    with shipyard.start_run("other", name="same", settings=tracking_backend_settings):
        pass  # names are unique per experiment only


def test_resume_run_by_id(tracking_backend_settings: Settings) -> None:
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        run.log_metric("m", 1.0, step=0)
    with shipyard.start_run(run_id=run.run_id, settings=tracking_backend_settings) as again:
        again.log_metric("m", 2.0, step=1)
    client = shipyard.get_client(tracking_backend_settings)
    assert [p.value for p in client.metric_history(run.run_id, "m")] == [1.0, 2.0]
    assert client.get_run(run.run_id).status is RunStatus.FINISHED


def test_artifacts_are_hashed_and_indexed(tracking_backend_settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "out"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha")
    (source / "sub" / "b.txt").write_text("beta")
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        single = run.log_artifact(source / "a.txt", artifact_path="files")
        run.log_artifacts(source, artifact_path="tree")
        run.log_dict({"k": [1, 2]}, "config.json")
        run.log_text("hello", "notes/readme.md")
        with pytest.raises(InvalidInput, match=r"escape|\.\."):
            run.log_text("x", "../outside.txt")
    assert single.sha256 == "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8"
    paths = [a.path for a in shipyard.get_client(tracking_backend_settings).list_artifacts(run.run_id)]
    assert paths == ["config.json", "files/a.txt", "notes/readme.md", "tree/a.txt", "tree/sub/b.txt"]
    assert not (Path(run.artifact_uri).parent / "outside.txt").exists()


def test_log_input_records_hash_and_schema(tracking_backend_settings: Settings, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        first = run.log_input(frame, name="train")
        again = run.log_input(frame.copy(), name="train")
        from_file = run.log_input(csv)
    assert first.digest == again.digest and len(first.digest) == 64
    assert first.num_rows == 3 and [c["name"] for c in first.schema["columns"]] == ["x", "y"]
    assert from_file.num_rows == 3 and from_file.source_type == "csv"
    changed = frame.assign(x=[1, 2, 4])
    from shipyard.tracking.datasets import describe_dataset

    assert describe_dataset(changed).digest != first.digest
    inputs = shipyard.get_client(tracking_backend_settings).dataset_inputs(run.run_id)
    assert [d.name for d in inputs] == ["train", "data.csv"]
    found = shipyard.get_client(tracking_backend_settings).search_runs("e", "datasets.name = 'train'")
    assert [r.run_id for r in found] == [run.run_id]


def test_search_filters_orders_and_pages(tracking_backend_settings: Settings) -> None:
    for i in range(12):
        with shipyard.start_run("s", name=f"r{i}", settings=tracking_backend_settings) as run:
            run.log_params({"model": "rf" if i % 2 else "lr", "depth": i})
            run.log_metric("acc", i / 10)
            run.set_tag("team", "a" if i < 6 else "b")
    client = shipyard.get_client(tracking_backend_settings)
    found = client.search_runs(
        "s", "metrics.acc > 0.5 and params.model = 'rf'", order_by=["metrics.acc desc"]
    )
    assert [r.name for r in found] == ["r11", "r9", "r7"]
    either = client.search_runs("s", "metrics.acc < 0.15 or tags.team = 'b' and params.depth > 10")
    assert sorted(r.name for r in either) == ["r0", "r1", "r11"]
    names: list[str] = []
    token = None
    while True:
        page = client.search_runs("s", None, order_by=["metrics.acc asc"], max_results=5, page_token=token)
        names += [r.name for r in page]
        token = page.next_page_token
        if token is None:
            break
    assert names == [f"r{i}" for i in range(12)]
    # Over every experiment, a page token outlives an experiment created between pages; a token of one
    # search is still refused by another.
    first = client.search_runs(None, "metrics.acc >= 0", order_by=["metrics.acc asc"], max_results=5)
    client.create_experiment("made-between-pages")
    second = client.search_runs(
        None,
        "metrics.acc >= 0",
        order_by=["metrics.acc asc"],
        max_results=5,
        page_token=first.next_page_token,
    )
    assert [r.name for r in second] == [f"r{i}" for i in range(5, 10)]
    with pytest.raises(InvalidInput, match="different search"):
        client.search_runs("s", "metrics.acc >= 0", max_results=5, page_token=first.next_page_token)
    narrow = client.search_runs(
        "s", "metrics.acc >= 1.1", columns=["metrics.acc"], order_by=["metrics.acc desc"]
    )
    assert [(r.name, dict(r.metrics), dict(r.params)) for r in narrow] == [("r11", {"acc": 1.1}, {})]
    frame = client.search_runs("s", "params.model in ('lr')", output_format="pandas")
    assert len(frame) == 6 and "metrics.acc" in frame.columns


def test_bad_filter_names_token_and_position(tracking_backend_settings: Settings) -> None:
    client = shipyard.get_client(tracking_backend_settings)
    client.create_experiment("s")
    with pytest.raises(InvalidInput) as info:
        client.search_runs("s", "metrics.acc > 0.9 and and params.x = 'y'")
    assert "and" in str(info.value) and "position 22" in str(info.value)
    with pytest.raises(InvalidInput, match="page_token"):
        client.search_runs("s", None, page_token="garbage!")


def test_delete_and_gc_remove_runs_and_artifacts(tracking_backend_settings: Settings) -> None:
    from shipyard.tracking.gc import collect_garbage

    with shipyard.start_run("g", settings=tracking_backend_settings) as keep:
        keep.log_text("k", "k.txt")
    with shipyard.start_run("g", settings=tracking_backend_settings) as doomed:
        doomed.log_text("d", "d.txt")
        doomed.log_metric("m", 1.0)
    client = shipyard.get_client(tracking_backend_settings)
    client.delete_run(doomed.run_id)
    assert [r.run_id for r in client.search_runs("g")] == [keep.run_id]
    report = collect_garbage(client)
    assert report.runs == 1
    with pytest.raises(NotFound):
        client.get_run(doomed.run_id)
    assert not Path(doomed.artifact_uri).exists()
    assert Path(keep.artifact_uri, "k.txt").exists()


def test_generated_name_clash_draws_a_new_name(
    tracking_backend_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.store.sql import tracking as client_module
    from shipyard.tracking.naming import generate_run_name

    first, second = "a" * 32, "b" * 32
    with shipyard.start_run("clash", name=generate_run_name(first), settings=tracking_backend_settings):
        pass
    ids = iter([first, second])
    monkeypatch.setattr(client_module, "new_id", lambda: next(ids))
    with shipyard.start_run("clash", settings=tracking_backend_settings) as run:
        pass
    assert run.run_id == second and run.name == generate_run_name(second)


def test_runs_with_tag_finds_across_experiments_newest_first(tracking_backend_settings: Settings) -> None:
    client = shipyard.get_client(tracking_backend_settings)
    found = []
    for experiment, status in (("a", RunStatus.FINISHED), ("b", RunStatus.FAILED), ("b", RunStatus.FINISHED)):
        with shipyard.start_run(experiment, tags={"key": "k1"}, settings=tracking_backend_settings) as run:
            run.end(status)
        found.append(run.run_id)
    with shipyard.start_run("a", tags={"key": "other"}, settings=tracking_backend_settings):
        pass
    assert [r.run_id for r in client.runs_with_tag("key", "k1")] == found[::-1]
    finished = client.runs_with_tag("key", "k1", status=RunStatus.FINISHED, limit=1)
    assert [r.run_id for r in finished] == [found[2]]
    assert client.runs_with_tag("key", "nothing") == []


def _points(run_pk: int, key: str, n: int) -> dict[tuple[int, str], Series]:
    series = Series()
    for step in range(n):
        series.steps.append(step)
        series.values.append(step / 10)
        series.timestamps.append(1_700_000_000_000 + step)
    return {(run_pk, key): series}


def test_a_retried_write_is_stored_once(tracking_backend_settings: Settings) -> None:
    """A batch, a run's end and a run's creation retried with the key of their first attempt (whose answer
    was lost) are stored once; another key is another write."""
    client = TrackingClient(tracking_backend_settings)
    run, pk = client.create_run("e", idempotency_key="create-0001")
    again, again_pk = client.create_run("e", idempotency_key="create-0001")
    assert (again.run_id, again_pk) == (run.run_id, pk)
    assert len(client.search_runs([client.get_experiment("e").experiment_id])) == 1
    named, _ = client.create_run("e", name="named", idempotency_key="create-0002")
    assert client.create_run("e", name="named", idempotency_key="create-0002")[0].run_id == named.run_id
    with pytest.raises(AlreadyExists):
        client.create_run("e", name="named", idempotency_key="create-0003")

    client.write_metrics(_points(pk, "loss", 3), idempotency_key="batch-0001")
    client.write_metrics(_points(pk, "loss", 3), idempotency_key="batch-0001")
    assert len(client.metric_history(run.run_id, "loss")) == 3
    client.write_metrics(_points(pk, "loss", 3), idempotency_key="batch-0002")
    assert len(client.metric_history(run.run_id, "loss")) == 6

    client.set_terminated(pk, RunStatus.FINISHED, _points(pk, "acc", 2), idempotency_key="end-00001")
    client.set_terminated(pk, RunStatus.FINISHED, _points(pk, "acc", 2), idempotency_key="end-00001")
    assert len(client.metric_history(run.run_id, "acc")) == 2
    assert client.get_run(run.run_id).status is RunStatus.FINISHED


def test_a_flush_whose_answer_was_lost_is_resent_once(
    tracking_backend_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer keeps a failed batch whole with its key and sends it again before newer points: a batch
    the store committed before the error (the answer lost) is not stored twice, one it did not is."""
    from shipyard.errors import StoreError

    with shipyard.start_run("e", settings=tracking_backend_settings) as run:
        client = run._client
        real = client.write_metrics
        failures = ["commit, then lose the answer", "fail before storing"]

        def flaky(pending: object, *, idempotency_key: str | None = None, params: object = None) -> None:
            if failures and failures[0].startswith("fail"):
                failures.pop(0)
                raise StoreError("the server went away")
            real(pending, idempotency_key=idempotency_key, params=params)  # type: ignore[arg-type]
            if failures:
                failures.pop(0)
                raise StoreError("the answer was lost")

        monkeypatch.setattr(client, "write_metrics", flaky)
        for step in range(5):
            run.log_metric("m", step, step=step)
        with pytest.raises(StoreError):
            run.flush()  # stored, but the answer is lost
        run.log_metric("m", 5, step=5)
        with pytest.raises(StoreError):
            run.flush()  # the resend of the first batch fails outright
        assert run._writer.pending == 6
        run.log_metric("m", 6, step=6)
        run.flush()
        assert run._writer.pending == 0
    history = shipyard.get_client(tracking_backend_settings).metric_history(run.run_id, "m")
    assert [p.step for p in history] == list(range(7))
