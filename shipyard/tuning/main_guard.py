"""Refuse, once and before anything is recorded, a parallel search started by unguarded script code.

Worker processes import the script that started them (multiprocessing does, to find functions defined in
it). A script that calls ``tune()`` at its top level, outside ``if __name__ == "__main__":``, would start the
search again in every worker: failed parent runs by the dozen, a search by that name that is not the user's.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import FrameType

from shipyard.errors import InvalidInput


def check_main_guard(caller: FrameType | None) -> None:
    """Raise if the call stack above ``caller`` runs from the main script's top level, unguarded.

    Raises:
        InvalidInput: naming the script and line, with the fix.
    """
    frame = caller
    while frame is not None:
        if frame.f_globals.get("__name__") == "__main__" and frame.f_code.co_name == "<module>":
            path = frame.f_code.co_filename
            if not _guarded(path, frame.f_lineno):
                raise InvalidInput(
                    f"{path}:{frame.f_lineno} starts a parallel search from the script's top level; its "
                    "worker processes import the script and would start it again. Put the call under "
                    '`if __name__ == "__main__":` (or run with parallel_trials=1)'
                )
            return
        frame = frame.f_back


def _guarded(path: str, line: int) -> bool:
    """Whether ``line`` of ``path`` lies inside an ``if __name__ == "__main__":`` block.

    A file that cannot be read or parsed (an interactive session, a notebook) counts as guarded: workers
    cannot import it, so nothing would run twice.
    """
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.body:
            start, end = node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno
            if start <= line <= end:
                return True
    return False


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    literals = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(literals) == 1
