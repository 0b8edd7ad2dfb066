"""The Jupyter extension: ``%load_ext shipyard``.

It adds the cell magic ``%%shipyard_run``, which runs the cell as a tracked run: the run is the active one
while the cell runs (``shipyard.log_metric`` … log into it), the cell's source is kept as the run's
``notebook/cell.py``, and the run ends FINISHED, or FAILED with the traceback when the cell raises. Runs,
search results, model versions and drift verdicts show as HTML tables (their ``_repr_html_``).

    %%shipyard_run --experiment churn --name baseline --tag team=ml
    model.fit(X, y)
    shipyard.log_metric("acc", model.score(X_test, y_test))
"""

from __future__ import annotations

import traceback
from typing import Any

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from shipyard.errors import InvalidInput


@magics_class
class ShipyardMagics(Magics):
    """``%%shipyard_run``."""

    @magic_arguments()
    @argument("--experiment", "-e", default=None, help="The run's experiment (default: the current one).")
    @argument("--name", "-n", default=None, help="The run's name (unique in its experiment).")
    @argument("--tag", "-t", action="append", default=[], help="KEY=VALUE, repeatable.")
    @argument("--nested", action="store_true", help="A child of the active run.")
    @cell_magic
    def shipyard_run(self, line: str, cell: str) -> Any:
        """Run the cell as a tracked run; shows the run when the cell ends."""
        import shipyard

        args = parse_argstring(self.shipyard_run, line)
        tags = {}
        for item in args.tag:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise InvalidInput(f"--tag takes KEY=VALUE, got {item!r}")
            tags[key] = value
        run = shipyard.start_run(args.experiment, args.name, tags=tags or None, nested=args.nested)
        with run:
            run.log_text(cell, "notebook/cell.py")
            result = self.shell.run_cell(cell, store_history=False)  # IPython shows the cell's error
            error = result.error_before_exec or result.error_in_exec
            if error is not None:
                run.log_traceback("".join(traceback.format_exception(error)))
                run.end("FAILED")
        return shipyard.get_run(run.run_id)


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext shipyard``."""
    ipython.register_magics(ShipyardMagics)
