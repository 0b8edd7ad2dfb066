"""The ``shipyard`` command line. `main` is the console-script entry point."""

from shipyard.cli.app import main

__all__ = ["main"]
