"""Shipyard's one exception hierarchy.

Every error a user can act on is a :class:`ShipyardError`. The CLI maps these to exit codes and the HTTP
layers map them to status codes, each in one place; third-party errors (SQLAlchemy, fsspec, …) are translated
at the edge with ``raise … from exc``.

::

    ShipyardError
    ├── NotFound (KeyError)             an id, name or key that does not exist
    ├── AlreadyExists                   a name that must be unique is taken
    ├── InvalidInput (ValueError)       a bad argument: field, token or path named in the message
    │   ├── FilterSyntaxError           a search filter that does not parse (token and position named)
    │   └── DataValidationError         data with error-severity anomalies against its schema (columns named)
    ├── Conflict                        a valid request that contradicts the stored state
    │   └── RunNotActive                logging to a run that has ended
    ├── Unauthorized / Forbidden        API server authentication and roles
    ├── UntrustedArtifact               loading would unpickle without ``trusted=True``
    ├── IntegrityError                  a stored file whose sha256 does not match its record
    ├── StoreError                      the metadata store cannot be used
    │   ├── SchemaError                 corrupt database or a schema this version cannot read
    │   └── ArtifactStoreError          the artifact root cannot be reached (endpoint, bucket, credentials)
    ├── PipelineError                   a pipeline that cannot compile or run
    │   └── PipelineDefinitionError     a malformed pipeline or spec (also an InvalidInput: exit 2)
    ├── TrainingFailed                  a training job whose worker raised or died (its rank named)
    ├── WorkerError                     where work runs is unusable: Ray missing or its cluster unreachable
    ├── ModelValidationFailed           an evaluated model below its validation thresholds (each named)
    └── ServingError                    a model server that cannot answer a request
        ├── ModelNotReady               the model is loading or failed to load (its error named)
        ├── Overloaded                  the model's queue is full: retry later (HTTP 503 + Retry-After)
        └── PredictionFailed            the model raised inside predict (its message kept)
"""

from __future__ import annotations

from typing import Any


class ShipyardError(Exception):
    """Root of every error Shipyard raises on purpose."""


class NotFound(ShipyardError, KeyError):
    """An experiment, run, key or file that does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it verbatim.
        return str(self.args[0]) if self.args else ""


class AlreadyExists(ShipyardError):
    """A name that must be unique in its scope is already taken."""


class InvalidInput(ShipyardError, ValueError):
    """A bad argument. The message names the bad field, token or path."""


class FilterSyntaxError(InvalidInput):
    """A search filter that does not parse.

    Attributes:
        token: the offending token text ("" at end of input).
        position: 0-based character offset of the token in the filter string.
    """

    def __init__(self, message: str, *, token: str, position: int) -> None:
        super().__init__(f"{message} at position {position} (token {token!r})")
        self.token = token
        self.position = position


class DataValidationError(InvalidInput):
    """Data that breaks its schema: error-severity anomalies, each column and kind named in the message."""


class Conflict(ShipyardError):
    """A well-formed request that contradicts stored state (e.g. changing a logged param)."""


class RunNotActive(Conflict):
    """Logging to a run that is no longer running."""


class Unauthorized(ShipyardError):
    """Missing or invalid credentials."""


class Forbidden(ShipyardError):
    """Valid credentials without the role the operation needs."""


class UntrustedArtifact(ShipyardError):
    """Loading the artifact would run arbitrary code (unpickling) and ``trusted=True`` was not given."""


class IntegrityError(ShipyardError):
    """A stored file's content does not match the sha256 recorded for it."""


class StoreError(ShipyardError):
    """The metadata store cannot be reached or used."""


class SchemaError(StoreError):
    """The database is corrupt, not a Shipyard store, or has a schema this version cannot read."""


class ArtifactStoreError(StoreError):
    """The artifact root's storage cannot be reached or used: a bad endpoint, a missing bucket, denied
    credentials. The message names the root URL and the underlying error, never the storage options."""


class PipelineError(ShipyardError):
    """A pipeline that cannot compile or run."""


class WorkerError(ShipyardError):
    """Where work runs cannot be used: Ray is missing, or its cluster cannot be reached or started."""


class TrainingFailed(ShipyardError):
    """A distributed training job that failed: a worker raised or died (the message names its rank and the
    error), or the workers could not start."""


class PipelineDefinitionError(PipelineError, InvalidInput):
    """A pipeline definition or spec that is not well-formed: a type mismatch, a missing input, an unknown
    parameter, a cycle, an invalid spec file. Bad input, so the CLI exits 2 (a failed run exits 1)."""


class ModelValidationFailed(ShipyardError):
    """An evaluated model that misses its validation thresholds. The message names each failed metric, its
    value and the threshold (and the baseline's value for a comparison); ``result`` is the whole evaluation,
    already logged to its run."""

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class ServingError(ShipyardError):
    """A model server that cannot answer a request."""


class ModelNotReady(ServingError):
    """The model is still loading, or failed to load (the message says why)."""


class Overloaded(ServingError):
    """The model's request queue is full; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PredictionFailed(ServingError):
    """The model raised inside predict; the message carries the model's own."""


def field_problems(exc: Any) -> str:
    """A pydantic ``ValidationError`` as ``field.path: message; …``, for an InvalidInput naming each field."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    )


__all__ = [
    "AlreadyExists",
    "ArtifactStoreError",
    "Conflict",
    "DataValidationError",
    "FilterSyntaxError",
    "Forbidden",
    "IntegrityError",
    "InvalidInput",
    "ModelNotReady",
    "ModelValidationFailed",
    "NotFound",
    "Overloaded",
    "PipelineDefinitionError",
    "PipelineError",
    "PredictionFailed",
    "RunNotActive",
    "SchemaError",
    "ServingError",
    "ShipyardError",
    "StoreError",
    "TrainingFailed",
    "Unauthorized",
    "UntrustedArtifact",
    "WorkerError",
    "field_problems",
]
