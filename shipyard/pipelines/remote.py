"""Pipelines on a platform server (team mode): submit a compiled spec, follow it, read logs, cancel, resume.

The server runs the spec in a driver process of its own, on its executor, with code installed on the server
(a client's folders mean nothing there). Requests go through :class:`~shipyard.store.http.HttpClient`, so
they share team mode's retries, token and error mapping: a 403 is `Forbidden`, a bad spec `InvalidInput`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shipyard.config import Settings, get_settings
from shipyard.errors import PipelineError
from shipyard.pipelines.run_status import PipelineRunState, StepLogs
from shipyard.pipelines.spec import PipelineSpec
from shipyard.store.http import HttpClient


class RemotePipelines:
    """The pipeline routes of the server ``settings.tracking_uri`` names."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or get_settings()
        if not settings.tracking_uri:
            raise PipelineError(
                "running pipelines on a server needs team mode: set SHIPYARD_TRACKING_URI to the server's "
                "URL (or use `shipyard pipeline run` to run here)"
            )
        self.http = HttpClient(settings.tracking_uri, token=settings.tracking_token)

    def submit(
        self,
        spec: PipelineSpec,
        parameters: dict[str, Any] | None = None,
        *,
        experiment: str | None = None,
        run_name: str | None = None,
        cache: bool = True,
    ) -> str:
        """Start ``spec`` on the server and return its pipeline run id (the run exists when this returns)."""
        body = {
            "spec": spec.to_yaml(),
            "parameters": dict(parameters or {}),
            "experiment": experiment,
            "run_name": run_name,
            "cache": cache,
        }
        return str(self.http.call("POST", "/pipelines/runs", json=body)["run_id"])

    def status(self, run_id: str) -> PipelineRunState:
        """The run's status and each step's."""
        return PipelineRunState.from_dict(self.http.call("GET", f"/pipelines/runs/{run_id}"))

    def logs(self, run_id: str, step: str) -> StepLogs:
        """What step ``step`` printed (once it has ended)."""
        return StepLogs(**self.http.call("GET", f"/pipelines/runs/{run_id}/steps/{step}/logs"))

    def cancel(self, run_id: str) -> None:
        """Stop the run's driver: it and its running steps end KILLED (`Conflict` if it is not running)."""
        self.http.call("POST", f"/pipelines/runs/{run_id}/cancel")

    def resume(self, run_id: str, *, run_name: str | None = None) -> str:
        """Re-run a failed pipeline run on the server from its failed steps on; the new run's id."""
        answer = self.http.call("POST", f"/pipelines/runs/{run_id}/resume", json={"run_name": run_name})
        return str(answer["run_id"])

    def list(
        self, *, experiment: str | None = None, max_results: int = 100, page_token: str | None = None
    ) -> tuple[list[PipelineRunState], str | None]:
        """A page of pipeline runs, newest first, and the next page's token."""
        params: dict[str, Any] = {"max_results": max_results}
        if experiment is not None:
            params["experiment"] = experiment
        if page_token is not None:
            params["page_token"] = page_token
        answer = self.http.call("GET", "/pipelines/runs", params=params)
        return [PipelineRunState.from_dict(r) for r in answer["runs"]], answer["next_page_token"]

    def wait(
        self,
        run_id: str,
        *,
        timeout_s: float | None = None,
        poll_s: float = 1.0,
        on_poll: Callable[[PipelineRunState], None] | None = None,
    ) -> PipelineRunState:
        """Poll until the run has ended (or ``timeout_s`` passed) and return its last state."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            state = self.status(run_id)
            if on_poll is not None:
                on_poll(state)
            if state.ended or (deadline is not None and time.monotonic() >= deadline):
                return state
            time.sleep(poll_s)

    def close(self) -> None:
        self.http.close()
