"""Patching a library's training entry points, safely and reversibly.

`patch` replaces ``owner.name`` (a class's ``fit``, a module's ``train``) with a wrapper that opens a
`FitSession` around the original and hands the call to the library's ``logged`` function. The wrapper keeps
three promises:

- the user's training behaves as without autologging: an exception from the original propagates unchanged
  (its run ends FAILED), and a failure of autologging itself is a warning, after which the original runs
  (or its result is returned, if it already ran);
- a training call inside another autologged call is not logged again, unless the outer call is of the same
  library and the library asked to ``join`` it (``xgboost.train`` inside ``XGBClassifier.fit`` adds its
  per-iteration metrics to the classifier's run);
- `unpatch` puts every original back; patching twice patches once.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from shipyard.autologging import imports
from shipyard.autologging.options import AutologOptions
from shipyard.autologging.session import FitSession, current_session, forget_warnings, warn_once
from shipyard.tracking.records import RunStatus

Original = Callable[..., Any]
Logged = Callable[[FitSession, Original, tuple[Any, ...], dict[str, Any]], Any]
"""``logged(session, original, args, kwargs)``: log around the call and return what ``original`` returns."""

_ORIGINAL = "__shipyard_autolog_original__"


@dataclass
class _Patch:
    owner: Any
    name: str
    original: Any


class _Registry:
    """The patches in place and the options of each library whose autologging is on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.patches: dict[str, list[_Patch]] = {}
        self.options: dict[str, AutologOptions] = {}


_registry = _Registry()


def options_of(library: str) -> AutologOptions | None:
    """The options of ``library``'s autologging, None while it is off."""
    return _registry.options.get(library)


def enable(
    library: str, options: AutologOptions, modules: tuple[str, ...], install: Callable[[ModuleType], None]
) -> None:
    """Turn ``library``'s autologging on with ``options``: ``install(module)`` patches each of ``modules``
    once it is imported (now if it is).

    Options set again replace the old ones; the patches stay. A failure to patch is a warning.
    """
    forget_warnings(library)
    with _registry.lock:
        _registry.options[library] = options
        if library in _registry.patches:
            return
        _registry.patches[library] = []

    def install_safely(module: ModuleType) -> None:
        if options_of(library) is None:
            return  # turned off before the library was imported
        try:
            install(module)
        except Exception as exc:
            disable(library)
            warn_once(library, "patch the library", exc, silent=options.silent)

    for module in modules:
        imports.when_imported(module, install_safely)


def disable(library: str) -> None:
    """Turn ``library``'s autologging off and restore every original it patched."""
    with _registry.lock:
        _registry.options.pop(library, None)
        patches = _registry.patches.pop(library, [])
    for item in reversed(patches):
        setattr(item.owner, item.name, item.original)


def patch(
    library: str,
    owner: Any,
    name: str,
    *,
    run_name: Callable[[tuple[Any, ...]], str],
    logged: Logged,
    join: Logged | None = None,
    skip: Callable[[tuple[Any, ...]], bool] | None = None,
) -> None:
    """Wrap ``owner.name`` (defined in ``owner`` itself); no-op when it is already wrapped.

    Args:
        library: whose options apply and under which name patches are undone.
        run_name: the name of a run this call starts, from the call's positional arguments.
        logged: what to do when this call is the outermost autologged one.
        join: what to do inside an outer call of the same library (default: nothing is logged).
        skip: true for calls this process must not log, from their positional arguments (the ranks other
            than 0 of a multi-process training); an error in it counts as true.
    """
    original = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if not callable(original) or getattr(original, _ORIGINAL, None) is not None:
        return  # absent, a descriptor this does not wrap (a staticmethod), or wrapped already

    @functools.wraps(original)
    def patched(*args: Any, **kwargs: Any) -> Any:
        options = options_of(library)
        outer = current_session()
        if options is None or (skip is not None and _skips(skip, args)):
            return original(*args, **kwargs)
        if outer is not None:
            if join is None or outer.library != library or not outer.logging:
                return original(*args, **kwargs)
            return _guarded(outer, original, join, args, kwargs, own=False)
        try:
            session = FitSession.open(library, options, run_name(args))
        except Exception as exc:  # the store is unreachable, say: train without logging
            warn_once(library, "start a run", exc, silent=options.silent)
            return original(*args, **kwargs)
        return _guarded(session, original, logged, args, kwargs, own=True)

    setattr(patched, _ORIGINAL, original)
    with _registry.lock:
        _registry.patches.setdefault(library, []).append(_Patch(owner, name, original))
    setattr(owner, name, patched)


def _skips(skip: Callable[[tuple[Any, ...]], bool], args: tuple[Any, ...]) -> bool:
    try:
        return bool(skip(args))
    except Exception:  # NOTE: when unsure whether this process should log, it does not
        return True


def _guarded(
    session: FitSession,
    original: Original,
    logged: Logged,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    own: bool,
) -> Any:
    call = _Call(original)
    status = RunStatus.FINISHED
    try:
        # A joined call runs inside the outer call's session, which is current already.
        with session if own else contextlib.nullcontext(session):
            try:
                return logged(session, call, args, kwargs)
            except Exception as exc:
                if call.error is exc:
                    raise  # the user's training failed: as without autologging
                warn_once(session.library, "log this training call", exc, silent=session.options.silent)
                if call.error is not None:
                    raise call.error from None
                return call.result if call.called else original(*args, **kwargs)
    except BaseException as exc:
        status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
        raise
    finally:
        if own:
            session.end(status)


class _Call:
    """The original, remembering whether it ran and what it returned or raised."""

    def __init__(self, original: Original) -> None:
        self.original = original
        self.__wrapped__ = original  # inspect.signature(call) is the original's
        self.called = False
        self.result: Any = None
        self.error: BaseException | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.called = True
        try:
            self.result = self.original(*args, **kwargs)
        except BaseException as exc:
            self.error = exc
            raise
        return self.result
