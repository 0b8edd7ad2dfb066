"""The worker layer that pipelines, tuning and training jobs all run their work on.

One contract (:class:`Pool`): submit a picklable :class:`Call` under a key, wait for :class:`Outcome` s
(``ok`` with the value, ``error`` with the traceback, ``died`` when the process running it died), kill one
call, close. Three pools keep it:

- :class:`WorkerPool`: local worker processes forked from a fork server, reused across calls; a worker that
  dies is replaced, not fatal; each leads its own process group (killing a call kills what it started) and
  dies with the driver however the driver ends (:mod:`shipyard.processes`);
- :class:`RayPool`: each call a Ray task placed by its :class:`Resources`;
- :class:`InlinePool`: calls run in this process at submit (one worker, no isolation, no pickling).
"""

from shipyard.workers.base import Call, Outcome, Pool, Resources, execute
from shipyard.workers.inline import InlinePool
from shipyard.workers.local import WorkerPool
from shipyard.workers.ray import RayPool, connect

__all__ = [
    "Call",
    "InlinePool",
    "Outcome",
    "Pool",
    "RayPool",
    "Resources",
    "WorkerPool",
    "connect",
    "execute",
]
