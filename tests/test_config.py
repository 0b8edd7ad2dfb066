from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shipyard import InvalidInput, Settings
from tests.conftest import console


def _bounded(tmp_path: Path, **environ: str) -> dict[str, str]:
    """No environment but a ceiling, so what lies above the test's folder (in /tmp) is never found."""
    return {"SHIPYARD_CEILING_DIRECTORIES": str(tmp_path.parent), **environ}


def test_defaults_live_under_home(tmp_path: Path) -> None:
    settings = Settings.load(environ=_bounded(tmp_path), cwd=tmp_path)
    assert settings.home == tmp_path / ".shipyard"
    assert settings.db_url == f"sqlite:///{tmp_path / '.shipyard' / 'shipyard.db'}"
    assert settings.artifact_root == str(tmp_path / ".shipyard" / "artifacts")
    assert settings.sources["home"] == "default"


def test_environment_beats_toml_beats_default(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text(
        '[shipyard]\nhome = "store"\nartifact_root = "s3://bucket/x"\n'
        "flush_interval = 0.5\nsystem_metrics = true\n"
    )
    settings = Settings.load(environ={"SHIPYARD_FLUSH_INTERVAL": "2"}, cwd=tmp_path)
    assert settings.home == tmp_path / "store"  # relative to the toml file
    assert settings.artifact_root == "s3://bucket/x"
    assert (
        settings.flush_interval == 2.0 and settings.sources["flush_interval"] == "env SHIPYARD_FLUSH_INTERVAL"
    )
    assert settings.system_metrics is True
    assert settings.sources["home"] == str(tmp_path / "shipyard.toml")


def test_a_sub_folder_finds_the_projects_store_like_git(tmp_path: Path) -> None:
    project = tmp_path / "project"
    deep = project / "src" / "features"
    deep.mkdir(parents=True)
    (project / ".shipyard").mkdir()
    settings = Settings.load(environ=_bounded(tmp_path), cwd=deep)
    assert settings.home == project / ".shipyard"
    found = project / ".shipyard"
    assert settings.sources["home"] == f"found {found} (the nearest .shipyard at or above {deep})"
    assert str(project / ".shipyard") in settings.store_description
    # The environment still wins, and a folder with nothing above it gets ./.shipyard.
    assert Settings.load(environ=_bounded(tmp_path, SHIPYARD_HOME="here"), cwd=deep).home == deep / "here"
    assert Settings.load(environ=_bounded(tmp_path), cwd=tmp_path).home == tmp_path / ".shipyard"


def test_a_projects_toml_found_from_a_sub_folder_anchors_its_store(tmp_path: Path) -> None:
    project = tmp_path / "project"
    deep = project / "notebooks"
    deep.mkdir(parents=True)
    (project / "shipyard.toml").write_text("flush_interval = 0.5\n")
    (deep / ".shipyard").mkdir()  # nearer, but the project's file says where the project is
    found = Settings.load(environ=_bounded(tmp_path), cwd=deep)
    assert found.flush_interval == 0.5 and found.sources["flush_interval"] == str(project / "shipyard.toml")
    assert found.home == deep / ".shipyard"  # the nearer .shipyard wins: it is found first
    (deep / ".shipyard").rmdir()
    found = Settings.load(environ=_bounded(tmp_path), cwd=deep)
    assert found.home == project / ".shipyard" and found.sources["home"].startswith("default (beside")
    (project / "shipyard.toml").write_text('home = "store"\n')
    assert Settings.load(environ=_bounded(tmp_path), cwd=deep).home == project / "store"


def test_settings_that_nothing_reads_are_refused(tmp_path: Path) -> None:
    # server_url/server_token were accepted and ignored; team mode will bring them back wired.
    (tmp_path / "shipyard.toml").write_text("server_url = 'http://x'\n")
    with pytest.raises(InvalidInput, match="unknown setting.*server_url"):
        Settings.load(environ=_bounded(tmp_path), cwd=tmp_path)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("colour = 'red'\n", "unknown setting"),
        ("flush_interval = 'soon'\n", "flush_interval"),
        ("system_metrics = 'maybe'\n", "system_metrics"),
        ("home = [\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_setting(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "shipyard.toml").write_text(toml)
    with pytest.raises(InvalidInput, match=message):
        Settings.load(environ=_bounded(tmp_path), cwd=tmp_path)


def test_missing_config_file_named_by_env_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"nope\.toml"):
        Settings.load(environ={"SHIPYARD_CONFIG": "nope.toml"}, cwd=tmp_path)


def test_the_search_for_a_store_stops_at_a_ceiling_directory(tmp_path: Path) -> None:
    (tmp_path / ".shipyard").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert Settings.load(environ=_bounded(tmp_path), cwd=deep).home == tmp_path / ".shipyard"
    ceiling = {"SHIPYARD_CEILING_DIRECTORIES": str(tmp_path / "a")}
    assert Settings.load(environ=ceiling, cwd=deep).home == deep / ".shipyard"


def test_team_mode_keeps_artifacts_on_the_server_unless_told_otherwise(tmp_path: Path) -> None:
    team = Settings.load(environ={"SHIPYARD_TRACKING_URI": "http://127.0.0.1:5000"}, cwd=tmp_path)
    assert team.artifact_root == "shipyard-artifacts://artifacts"
    assert "team mode" in team.sources["artifact_root"]
    chosen = Settings.load(
        environ={"SHIPYARD_TRACKING_URI": "http://127.0.0.1:5000", "SHIPYARD_ARTIFACT_ROOT": "s3://b/a"},
        cwd=tmp_path,
    )
    assert chosen.artifact_root == "s3://b/a"
    secret = Settings.load(environ={"SHIPYARD_TRACKING_TOKEN": "shy_x_y"}, cwd=tmp_path)
    assert "shy_x_y" not in repr(secret) and ("tracking_token", "****", "env SHIPYARD_TRACKING_TOKEN") in (
        secret.describe()
    )


SECRET = "do-not-print-this-secret"
OPTIONS_JSON = json.dumps({"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}, "secret": SECRET})


def test_storage_options_come_from_json_in_the_environment_or_a_toml_table(tmp_path: Path) -> None:
    from_env = Settings.load(
        environ=_bounded(
            tmp_path,
            SHIPYARD_ARTIFACT_ROOT="s3://bucket/prefix",
            SHIPYARD_ARTIFACT_STORAGE_OPTIONS=OPTIONS_JSON,
        ),
        cwd=tmp_path,
    )
    assert from_env.artifact_storage_options == json.loads(OPTIONS_JSON)
    # They apply to the artifact root's filesystem only: not to a local folder.
    assert from_env.storage_options_for("s3://bucket/prefix/1/abc") == json.loads(OPTIONS_JSON)
    assert from_env.storage_options_for("/tmp/model") == {}
    (tmp_path / "shipyard.toml").write_text(
        'artifact_root = "s3://bucket/x"\n[artifact_storage_options]\nprofile = "ml"\n'
        "[artifact_storage_options.client_kwargs]\nendpoint_url = 'http://minio:9000'\n"
    )
    from_toml = Settings.load(environ=_bounded(tmp_path), cwd=tmp_path)
    assert from_toml.artifact_storage_options == {
        "profile": "ml",
        "client_kwargs": {"endpoint_url": "http://minio:9000"},
    }


def test_storage_options_never_show_in_a_repr_or_an_error(tmp_path: Path) -> None:
    settings = Settings.load(
        environ=_bounded(tmp_path, SHIPYARD_ARTIFACT_STORAGE_OPTIONS=OPTIONS_JSON), cwd=tmp_path
    )
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.describe())
    for bad in ('{"secret": "' + SECRET + '"', '["' + SECRET + '"]'):
        with pytest.raises(InvalidInput, match="SHIPYARD_ARTIFACT_STORAGE_OPTIONS") as excinfo:
            Settings.load(environ=_bounded(tmp_path, SHIPYARD_ARTIFACT_STORAGE_OPTIONS=bad), cwd=tmp_path)
        assert SECRET not in str(excinfo.value)


def test_config_show_masks_the_storage_options(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_ARTIFACT_ROOT": "s3://bucket/prefix",
        "SHIPYARD_ARTIFACT_STORAGE_OPTIONS": OPTIONS_JSON,
    }
    shown = console("config", "show", cwd=tmp_path, env=env)
    as_json = console("config", "show", "--json", cwd=tmp_path, env=env)
    for result in (shown, as_json):
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr
        assert "127.0.0.1:9" not in result.stdout  # every value is masked, the endpoint too
    # The keys still say what is set.
    value = json.loads(json.loads(as_json.stdout)["artifact_storage_options"]["value"])
    assert value == {"client_kwargs": {"endpoint_url": "***"}, "secret": "***"}
    # A bad value is refused naming the variable, not echoing it.
    env["SHIPYARD_ARTIFACT_STORAGE_OPTIONS"] = '{"secret": "' + SECRET
    failed = console("config", "show", cwd=tmp_path, env=env)
    assert failed.returncode != 0
    assert "SHIPYARD_ARTIFACT_STORAGE_OPTIONS" in failed.stderr
    assert SECRET not in failed.stdout + failed.stderr
