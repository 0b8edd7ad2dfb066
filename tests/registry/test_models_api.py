"""``shipyard.models`` end to end: log in a run, register, alias, promote, load by every URI form."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

import shipyard
from shipyard import IntegrityError, InvalidInput, NotFound, Settings, UntrustedArtifact, models


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, np.ndarray, RandomForestClassifier]:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(frame, data.target)
    return frame, data.target.to_numpy(), model


def _log(settings: Settings, model: object, example: object, **options: object) -> models.ModelInfo:
    with shipyard.start_run("models", settings=settings) as run:
        run.log_metric("acc", 0.97)
        run.log_param("trees", 10)
        run.log_input(pd.DataFrame({"a": [1, 2]}), name="train")
        return models.log(model, input_example=example, **options)


def test_log_register_alias_and_load_by_every_uri(settings: Settings, iris: tuple) -> None:
    frame, _, model = iris
    info = _log(settings, model, frame.iloc[:5])
    assert info.uri.startswith("runs:/") and info.manifest.flavor == "sklearn"
    assert info.manifest.metrics == {"acc": 0.97} and info.manifest.params == {"trees": "10"}
    version = models.register(info.uri, "iris", settings=settings)
    again = models.register(info.uri, "iris", settings=settings)
    assert (version.version, again.version) == (1, 2)
    assert version.run_id == info.run_id
    assert (
        version.lineage["datasets"][0]["name"] == "train"
        and len(version.lineage["datasets"][0]["digest"]) == 64
    )
    models.set_alias("iris", "champion", 1, settings=settings)
    expected = model.predict(frame.iloc[:20])
    for uri in (info.uri, "models:/iris/1", "models:/iris@champion", "models:/iris/latest"):
        loaded = models.load(uri, settings=settings)
        np.testing.assert_array_equal(loaded.predict(frame.iloc[:20]), expected)
    assert models.get("models:/iris@champion", settings=settings).version == 1
    models.transition("iris", 2, "Staging", reason="canary", settings=settings)
    assert models.get("models:/iris/Staging", settings=settings).version == 2


def test_loaded_model_enforces_the_signature(settings: Settings, iris: tuple) -> None:
    frame, _, model = iris
    info = _log(settings, model, frame.iloc[:5])
    loaded = models.load(info.uri, settings=settings)
    with pytest.raises(InvalidInput, match="petal width"):
        loaded.predict(frame.drop(columns=["petal width (cm)"]).iloc[:3])
    bad = frame.iloc[:3].astype({"sepal length (cm)": object})
    bad.iloc[0, 0] = "not a number"
    with pytest.raises(InvalidInput, match="sepal length"):
        loaded.predict(bad)
    reordered = frame.iloc[:3][list(reversed(frame.columns))]
    np.testing.assert_array_equal(loaded.predict(reordered), model.predict(frame.iloc[:3]))


def test_registering_a_run_without_a_model_is_not_found(settings: Settings) -> None:
    with shipyard.start_run("models", settings=settings) as run:
        run.log_text("x", "notes.txt")
    with pytest.raises(NotFound, match="has no model at 'model'"):
        models.register(f"runs:/{run.run_id}/model", "iris", settings=settings)


def test_tampered_model_file_is_refused_on_load(settings: Settings, iris: tuple) -> None:
    frame, _, model = iris
    info = _log(settings, model, frame.iloc[:5])
    version = models.register(info.uri, "iris", settings=settings)
    package_dir = Path(version.package_uri.removeprefix("file://"))
    (package_dir / "model.skops").write_bytes(b"PK\x03\x04 tampered")
    for uri in (info.uri, "models:/iris/1"):
        with pytest.raises(IntegrityError, match=r"model\.skops"):
            models.load(uri, settings=settings)


def test_tampered_manifest_is_refused(settings: Settings, iris: tuple) -> None:
    frame, _, model = iris
    version = models.register(_log(settings, model, frame.iloc[:5]).uri, "iris", settings=settings)
    manifest = Path(version.package_uri.removeprefix("file://")) / "MODEL.yaml"
    manifest.write_text(manifest.read_text().replace("flavor: sklearn", "flavor: pyfunc"))
    with pytest.raises(IntegrityError, match="MODEL.yaml"):
        models.load("models:/iris/1", settings=settings)


def test_pickled_pyfunc_needs_trusted(settings: Settings) -> None:
    from tests.registry.flavors.pyfunc_models import Memorizer

    stateful = Memorizer().fit(["a", "b"], [1.0, 2.0])
    info = _log(settings, stateful, None, flavor="pyfunc")
    assert info.manifest.loader.get("format") == "pickle"
    with pytest.raises(UntrustedArtifact, match="trusted=True"):
        models.load(info.uri, settings=settings)
    loaded = models.load(info.uri, settings=settings, trusted=True)
    assert loaded.predict(pd.DataFrame({"key": ["b", "z"]})) == [2.0, 0.0]


def test_unknown_flavor_is_named(settings: Settings, iris: tuple) -> None:
    frame, _, model = iris
    with pytest.raises(InvalidInput, match="unknown flavor 'keras'"):
        _log(settings, model, frame.iloc[:5], flavor="keras")
    info = _log(settings, model, frame.iloc[:5])
    version = models.register(info.uri, "iris", settings=settings)
    folder = Path(version.package_uri.removeprefix("file://"))
    local = settings.home / "copy"
    shutil.copytree(folder, local)
    manifest = local / "MODEL.yaml"
    manifest.write_text(manifest.read_text().replace("flavor: sklearn", "flavor: keras"))
    with pytest.raises(InvalidInput, match="unknown flavor 'keras'"):
        models.load(str(local), settings=settings)


def test_local_package_registers_by_copy_and_exports(settings: Settings, iris: tuple, tmp_path: Path) -> None:
    frame, _, model = iris
    models.save(model, tmp_path / "pkg", input_example=frame.iloc[:5])
    version = models.register(str(tmp_path / "pkg"), "local", settings=settings)
    shutil.rmtree(tmp_path / "pkg")  # the registry owns its copy
    loaded = models.load("models:/local/1", settings=settings)
    np.testing.assert_array_equal(loaded.predict(frame.iloc[:5]), model.predict(frame.iloc[:5]))
    archive = models.export("local", version.version, tmp_path / "local.tar.gz", settings=settings)
    imported = models.import_archive(archive, name="copied", settings=settings)
    assert imported.tags["imported_from"] == "local/1"
    np.testing.assert_array_equal(
        models.load("models:/copied/1", settings=settings).predict(frame.iloc[:5]),
        model.predict(frame.iloc[:5]),
    )


def test_diff_compares_metrics_params_and_signature(settings: Settings, iris: tuple) -> None:
    frame, _, model = iris
    models.register(_log(settings, model, frame.iloc[:5]).uri, "iris", settings=settings)
    narrow = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame.iloc[:, :3], iris[1])
    models.register(_log(settings, narrow, frame.iloc[:5, :3]).uri, "iris", settings=settings)
    result = models.diff("iris", 1, 2, settings=settings)
    columns = {key: (a, b) for key, a, b in result.signature}
    assert columns["petal width (cm)"][0] is not None and columns["petal width (cm)"][1] is None
    assert ("acc", 0.97, 0.97) in result.metrics


def test_input_example_the_model_rejects_is_invalid(settings: Settings, iris: tuple) -> None:
    frame, _, model = iris
    with pytest.raises(InvalidInput, match="input_example"):
        _log(settings, model, frame.iloc[:5, :2])


def test_log_outside_a_run_is_a_clear_error(iris: tuple) -> None:
    frame, _, model = iris
    with pytest.raises(InvalidInput, match="needs a run"):
        models.log(model, input_example=frame.iloc[:5])


def test_bad_model_name_is_refused_before_anything_is_copied(
    settings: Settings, iris: tuple, tmp_path: Path
) -> None:
    frame, _, model = iris
    models.save(model, tmp_path / "pkg", input_example=frame.iloc[:5])
    for bad in ("..", "a/b", "x@y"):
        with pytest.raises(InvalidInput, match="model name"):
            models.register(str(tmp_path / "pkg"), bad, settings=settings)
    assert not (Path(settings.artifact_root) / "registry").exists()


@pytest.mark.parametrize("version", [2**31, 10**30, 10**5000], ids=["2^31", "10^30", "10^5000"])
def test_a_version_out_of_range_is_invalid_input_on_every_models_call(
    settings: Settings, iris: tuple, tmp_path: Path, version: int
) -> None:
    frame, _, model = iris
    models.register(_log(settings, model, frame.iloc[:2]).uri, "iris", settings=settings)
    calls = [
        lambda: models.load(f"models:/iris/{min(version, 10**30)}", settings=settings),
        lambda: models.get(f"models:/iris/{min(version, 10**30)}", settings=settings),
        lambda: models.set_alias("iris", "champion", version, settings=settings),
        lambda: models.transition("iris", version, "Production", settings=settings),
        lambda: models.delete_version("iris", version, settings=settings),
        lambda: models.export("iris", version, tmp_path / "out.tar.gz", settings=settings),
        lambda: models.diff("iris", 1, version, settings=settings),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="out of range: versions are 1 to 2147483647") as info:
            call()
        assert len(str(info.value)) < 300
    assert not (tmp_path / "out.tar.gz").exists()


def test_loader_options_a_flavor_does_not_take_are_named_and_auto_is_dropped(settings: Settings) -> None:
    xgboost = pytest.importorskip("xgboost", reason="xgboost is a dev dependency")
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = xgboost.XGBClassifier(n_estimators=3).fit(frame, [0, 1, 0, 1])
    info = _log(settings, model, frame.iloc[:2])
    assert info.manifest.flavor == "xgboost"
    # "auto" asks for the fastest verified runtime: a flavor with one runtime has it already.
    loaded = models.load(info.uri, prefer="auto", settings=settings)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    with pytest.raises(InvalidInput, match="the xgboost flavor's loader takes no option 'prefer'"):
        models.load(info.uri, prefer="onnx", settings=settings)
    with pytest.raises(InvalidInput, match="takes no option 'colour'"):
        models.load(info.uri, colour="red", settings=settings)
