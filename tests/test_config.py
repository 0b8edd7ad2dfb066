from __future__ import annotations

from pathlib import Path

import pytest

from shipyard import InvalidInput, Settings


def test_defaults_live_under_home(tmp_path: Path) -> None:
    settings = Settings.load(environ={}, cwd=tmp_path)
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


def test_secrets_are_masked(tmp_path: Path) -> None:
    settings = Settings.load(environ={"SHIPYARD_SERVER_TOKEN": "s3cret"}, cwd=tmp_path)
    shown = dict((name, value) for name, value, _ in settings.describe())
    assert shown["server_token"] == "****"
    assert "s3cret" not in repr(settings.describe())


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
        Settings.load(environ={}, cwd=tmp_path)


def test_missing_config_file_named_by_env_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"nope\.toml"):
        Settings.load(environ={"SHIPYARD_CONFIG": "nope.toml"}, cwd=tmp_path)
