"""Notebooks: the Jupyter extension (``%load_ext shipyard``)."""
