"""Model flavors: how each model family is saved to files and loaded back (see ``base.py``)."""

from shipyard.registry.flavors.base import Flavor, Predictor, SavedModel
from shipyard.registry.flavors.catalog import flavor_for, flavor_names, get_flavor

__all__ = ["Flavor", "Predictor", "SavedModel", "flavor_for", "flavor_names", "get_flavor"]
