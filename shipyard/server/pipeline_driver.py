"""The detached process in which a platform server runs a pipeline: submitted, resumed or scheduled.

SECURITY: running a submitted spec is running code installed on the server. A spec names each step's code by
module and function, and the driver's workers import them, so:

- the spec's ``project_dir`` (a folder on whichever machine compiled it) is never searched: steps import
  from the server's own Python path plus its ``--pipelines-path`` (none by default); the driver runs with
  ``python -P``, so not even the server's working directory is on the path;
- every step must name a ``@component`` (``os.system`` is installed too) whose source is the one the spec
  was compiled from (its ``source_sha256``): other code, or other versions, are refused before the pipeline
  run is created.

Protocol: the server writes a JSON :class:`Job` on the driver's stdin and reads one JSON line back, either
``{"run_id": …}`` once the pipeline run is recorded (so a status call right after finds it) or
``{"error": class name, "message": …}`` when it cannot start. The driver then runs the pipeline to the end
in its own session (a server restart does not stop it). SIGTERM stops it: the run and its running steps end
KILLED (:func:`cancel`).

Step workers reach the server's files as it does (``SHIPYARD_SERVED_ARTIFACTS``): local ones inherit the
driver's environment, and each Ray task carries it (a multi-node cluster needs an artifact destination
every node reaches: an object store).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard import errors
from shipyard.auth.records import ACTOR
from shipyard.config import Settings
from shipyard.errors import Conflict, PipelineDefinitionError, PipelineError, ShipyardError
from shipyard.pipelines.compiler import source_sha256
from shipyard.pipelines.dsl import Component
from shipyard.pipelines.executors import executor_for
from shipyard.pipelines.executors.engine import PIPELINE_FILE
from shipyard.pipelines.spec import PipelineSpec
from shipyard.processes import host_name
from shipyard.store.server_artifacts import PROTOCOL, served_environment
from shipyard.tracking import get_client

DRIVER_MODULE = "shipyard.server.pipeline_driver"
DRIVER_TAG = "shipyard.driver"  # "server" on pipeline runs a server's driver runs: only those are cancelled
SUBMITTED_BY_TAG = "shipyard.submitted_by"
_START_TIMEOUT_S = 120.0  # importing the step modules and creating the run; generous on a loaded machine


@dataclass(frozen=True)
class DriverConfig:
    """How a server runs pipelines: its settings as its routes see them, where its files really are, and
    the one extra folder step code may come from.

    Attributes:
        settings: the server's settings (with ``artifacts``, a logical ``shipyard-artifacts://`` root).
        served: the folder or object store behind that root, and its storage options (None: the settings'
            artifact root is the real one).
        code_dir: ``--pipelines-path``: searched for step modules after the server's own Python path.
    """

    settings: Settings
    served: tuple[str, dict[str, Any]] | None = None
    code_dir: str | None = None

    @classmethod
    def for_server(
        cls, settings: Settings, artifacts: str | None, code_dir: str | None = None
    ) -> DriverConfig:
        """The config of a server over ``settings`` that keeps its files in ``artifacts`` (see create_app)."""
        if artifacts is None:
            return cls(settings, None, code_dir)
        # The destination stands in for the artifact root: the storage options (endpoint, credentials) are
        # its, and the server's own stores see only the logical locations, which need none.
        options = dataclasses.replace(settings, artifact_root=artifacts).storage_options_for(artifacts)
        logical = dataclasses.replace(
            settings, artifact_root=f"{PROTOCOL}://artifacts", artifact_storage_options={}
        )
        return cls(logical, (artifacts, options), code_dir)


@dataclass(frozen=True)
class Job:
    """What a driver does: ``run`` a spec, or ``resume`` the failed pipeline run ``resume_of``.

    ``user`` is who records are by (the signed-in submitter); ``tags`` go on the pipeline run.
    """

    action: str
    executor: str
    spec_yaml: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    experiment: str | None = None
    run_name: str | None = None
    cache: bool = True
    resume_of: str | None = None
    user: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Started:
    """A driver that has recorded its pipeline run; ``log`` takes what it prints (kept if not empty)."""

    run_id: str
    process: subprocess.Popen[bytes]
    log: Path

    def wait(self) -> int:
        """Wait for the driver to end; its exit status."""
        code = self.process.wait()
        _drop_if_empty(self.log)
        return code


# ---------------------------------------------------------------------------------------------- server side
def launch(config: DriverConfig, job: Job, *, reap: bool = True) -> Started:
    """Start a driver for ``job`` and return once its pipeline run exists.

    Args:
        reap: wait for the driver in a background thread (so it leaves no zombie); a caller that waits for
            it itself passes False.

    Raises:
        the driver's typed error when the job cannot start (a bad spec or parameter, a step that is not an
        installed component, a run name taken, a resume of a running run, …).
    """
    env = {
        k: v for k, v in os.environ.items() if k not in ("SHIPYARD_TRACKING_URI", "SHIPYARD_TRACKING_TOKEN")
    }
    if config.served is not None:
        env.update(served_environment(*config.served))
    home = Path(config.settings.home)
    logs = home / "pipeline-drivers"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}.log"
    payload = {
        "settings": _settings_dict(config.settings),
        "code_dir": config.code_dir,
        "job": dataclasses.asdict(job),
    }
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", DRIVER_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=str(logs),  # a folder of logs only: nothing to import, even for executors that add the cwd
            start_new_session=True,  # detached: the server's Ctrl-C or restart does not stop the pipeline
        )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(json.dumps(payload).encode())
        process.stdin.close()
        answer = _read_answer(process, _START_TIMEOUT_S)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        process.stdout.close()
    if answer is None or "run_id" not in answer:
        if answer is None:
            process.kill()
        process.wait()
        _drop_if_empty(log_path)
        if answer is None:
            tail = log_path.read_text(errors="replace")[-2000:].strip()
            raise PipelineError(f"the pipeline driver did not start (log {log_path}): {tail or 'no output'}")
        raise _error(answer)
    started = Started(answer["run_id"], process, log_path)
    if reap:  # so it leaves no zombie behind
        threading.Thread(target=started.wait, name="shipyard-reaper", daemon=True).start()
    return started


def _drop_if_empty(log_path: Path) -> None:
    with contextlib.suppress(OSError):
        if log_path.stat().st_size == 0:
            log_path.unlink()


def cancel(run_id: str, pid: int | None, host: str | None, tags: dict[str, str]) -> int:
    """Stop the driver of pipeline run ``run_id`` (recorded as ``pid@host``) with SIGTERM; return the pid.

    Any server process on the driver's host may do it (with ``--workers N`` another worker started it).

    Raises:
        Conflict: the driver runs on another host, was not started by a server, or is gone.
    """
    if tags.get(DRIVER_TAG) != "server" or pid is None:
        raise Conflict(
            f"pipeline run {run_id} was not started by a server's driver; stop it where it runs (Ctrl-C)"
        )
    here = host_name()
    if host != here:
        raise Conflict(
            f"pipeline run {run_id} runs on host {host!r}, not on this server's host {here!r}: "
            "send the cancel to the server there"
        )
    if not _is_driver(pid):
        raise Conflict(f"the driver of pipeline run {run_id} (process {pid}) is no longer running")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError as exc:
        raise Conflict(f"the driver of pipeline run {run_id} (process {pid}) has ended") from exc
    return pid


def _is_driver(pid: int) -> bool:
    """Whether ``pid`` is a live pipeline driver (not a process that reused a dead driver's pid)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return DRIVER_MODULE.encode() in cmdline.read_bytes()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return False  # a Linux without that pid
    except OSError:
        return False
    try:  # no /proc (macOS): the pid is alive; the run's RUNNING status and tag vouch for it
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _read_answer(process: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any] | None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([process.stdout], [], [], left)
        if not ready:
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            break  # the driver exited (or closed its stdout) without answering
        line += chunk
    try:
        answer = json.loads(line)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _error(answer: dict[str, Any]) -> ShipyardError:
    kind = getattr(errors, str(answer.get("error")), None)
    if not (isinstance(kind, type) and issubclass(kind, ShipyardError)):
        kind = PipelineError
    return kind(str(answer.get("message", "the pipeline driver failed")))


def _settings_dict(settings: Settings) -> dict[str, Any]:
    data = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name != "sources"}
    data["home"] = str(settings.home)
    data["artifact_storage_options"] = dict(settings.artifact_storage_options)
    return data


# ---------------------------------------------------------------------------------------------- driver side
def check_components(spec: PipelineSpec, code_dir: str | None) -> None:
    """Every step of ``spec`` names an installed ``@component`` with the source it was compiled from.

    Raises:
        PipelineDefinitionError: naming the step and what is wrong.
    """
    if code_dir and code_dir not in sys.path:
        sys.path.append(code_dir)
    where = f"the server's Python path{f' and --pipelines-path {code_dir}' if code_dir else ''}"
    for step_id, step in spec.steps.items():
        ref = step.component
        name = f"{ref.module}.{ref.function}"
        try:
            module = importlib.import_module(ref.module)
        except Exception as exc:  # not found, a relative name, or a module that fails as it loads
            raise PipelineDefinitionError(
                f"step {step_id!r}: cannot import {name} from {where} ({exc}); the server runs only code "
                "installed on it"
            ) from exc
        target = getattr(module, ref.function, None)
        if not isinstance(target, Component):
            raise PipelineDefinitionError(
                f"step {step_id!r}: {name} is not a @component; the server runs only pipeline components"
            )
        try:
            same = source_sha256(target.func) == ref.source_sha256
        except (OSError, TypeError):  # no source to hash (a .pyc-only install): cannot vouch for it
            same = False
        if not same:
            raise PipelineDefinitionError(
                f"step {step_id!r}: the server's {name} is not the code the spec was compiled from (its "
                "source_sha256 differs); install the same version on the server, or compile against it"
            )


def _answer(out: Any, data: dict[str, Any]) -> None:
    out.write(json.dumps(data) + "\n")
    out.flush()
    out.close()


def main() -> int:
    """The driver process: read the job, answer with the run id (or why not), run it to the end."""
    request = json.loads(sys.stdin.read())
    # The answer goes out on the original stdout; anything printed later goes to the log with stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    answered = False

    def started(run_id: str) -> None:
        nonlocal answered
        answered = True
        _answer(out, {"run_id": run_id})

    try:
        settings_data = request["settings"]
        settings = Settings(**{**settings_data, "home": Path(settings_data["home"])})
        job = Job(**request["job"])
        code_dir = request.get("code_dir")
        if job.user:
            ACTOR.set(job.user)  # records are the submitter's, as if the server had written them
        executor = executor_for(job.executor, settings=settings)
        executor.trust_project_dir, executor.code_dir = False, code_dir
        tags = {**job.tags, DRIVER_TAG: "server"}
        if job.action == "resume":
            assert job.resume_of is not None
            text = None
            with contextlib.suppress(ShipyardError):  # not a pipeline run: resume says so below
                text = get_client(settings).read_artifact(job.resume_of, PIPELINE_FILE).decode()
            if text is not None:
                check_components(PipelineSpec.from_yaml(text, source=PIPELINE_FILE), code_dir)
            executor.resume(job.resume_of, run_name=job.run_name, tags=tags, on_start=started)
        else:
            spec = PipelineSpec.from_yaml(job.spec_yaml, source="the submitted spec")
            check_components(spec, code_dir)
            executor.run(
                spec,
                job.parameters,
                experiment=job.experiment,
                run_name=job.run_name,
                cache=job.cache,
                tags=tags,
                on_start=started,
            )
    except BaseException as exc:
        if not answered:
            message = str(exc) if isinstance(exc, ShipyardError) else f"{type(exc).__name__}: {exc}"
            _answer(out, {"error": type(exc).__name__, "message": message})
        if isinstance(exc, ShipyardError | SystemExit | KeyboardInterrupt):
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
