"""deploy/ci: the GitHub Actions and GitLab CI examples run the same commands, and those commands, run in
order twice in a fresh project (the first model, then a challenger gated against it), train, gate, promote
and export what a cluster needs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import shipyard
from tests.k8s_validation import load_yaml_documents, validate_manifests

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "deploy" / "ci"


def _github_steps() -> list[str]:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = workflow["jobs"]["model"]["steps"]
    names = [s.get("name") for s in steps]
    # What runs after the install step; `uses:` steps (checkout, setup-python, upload) are GitHub's.
    return [s["run"] for s in steps[names.index("install") + 1 :] if "run" in s]


def _gitlab_steps() -> list[str]:
    job = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["model"]
    return list(job["script"])


def _normal(command: str) -> str:
    return "\n".join(line.strip() for line in command.strip().splitlines())


def test_both_examples_run_the_same_commands() -> None:
    assert [_normal(c) for c in _github_steps()] == [_normal(c) for c in _gitlab_steps()]
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    install = next(s for s in workflow["jobs"]["model"]["steps"] if s.get("name") == "install")
    assert install["run"] == yaml.safe_load((CI / "gitlab-ci.yml").read_text())["model"]["before_script"][0]


@pytest.mark.slow(seconds=100)
def test_the_commands_train_gate_promote_and_export(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "examples", project / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(CI, project / "deploy" / "ci")
    home = tmp_path / "home"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_TRACKING", "SHIPYARD_HOME"))
    } | {
        "SHIPYARD_HOME": str(home),
        "IMAGE_REPOSITORY": "registry.example.com/ml/breast-cancer",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    outputs = []
    for push in range(2):  # the first model, then a challenger against it
        if push == 1:
            # The second push changes the training code: its steps miss the cache and train a new version.
            source = project / "examples" / "train_pipeline.py"
            source.write_text(source.read_text().replace("max_depth: int = 5", "max_depth: int = 6"))
        for command in _github_steps():
            done = subprocess.run(
                ["bash", "-e", "-u", "-o", "pipefail", "-c", command],
                cwd=project, env=env, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            outputs.append(done.stdout)
    gates = [o for o in outputs if "Gate: models:/breast-cancer/" in o]
    assert "gate passed" in gates[0] and " vs " not in gates[0].splitlines()[0]
    assert "Gate: models:/breast-cancer/2 vs models:/breast-cancer/1" in gates[1]
    settings = shipyard.config.Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=project)
    registry = shipyard.models.registry_client(settings)
    champion = registry.resolve(shipyard.registry.uri.parse_model_uri("models:/breast-cancer@champion"))
    assert champion.version == 2 and champion.stage.value == "Production"
    assert champion.tags["shipyard.gate.status"] == "passed"
    assert registry.get_version("breast-cancer", 1).stage.value == "Archived"
    actions = [(e.version, e.action, e.to_value) for e in registry.events("breast-cancer")]
    assert actions.index((2, "gate", "passed")) < actions.index((2, "transition", "Production"))
    # What the export step wrote: a build context and manifests that validate.
    build = json.loads((project / "build" / "breast-cancer" / "build.json").read_text())
    assert (build["version"], build["tag"]) == (2, "registry.example.com/ml/breast-cancer:2")
    for name in ("inferenceservice.yaml", "deployment.yaml"):
        documents = load_yaml_documents(project / "k8s" / name)
        validate_manifests(documents)
        assert documents[0]["metadata"]["annotations"]["shipyard.io/model-uri"] == "models:/breast-cancer/2"
