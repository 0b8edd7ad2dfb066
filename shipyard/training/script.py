"""``python -m shipyard.training.script SCRIPT [ARGS]``: a worker of ``shipyard train`` (see
:mod:`shipyard.training.worker`; kept apart so that the worker module is imported once, by name)."""

from shipyard.training.worker import main

if __name__ == "__main__":
    main()
