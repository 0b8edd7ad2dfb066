"""Autologging: ``shipyard.autolog()`` logs scikit-learn, XGBoost, LightGBM and PyTorch Lightning training.

One module per library (``shipyard.autologging.sklearn.autolog()`` turns on one alone); `patching` wraps
their entry points safely and reversibly, `session` picks the run a training call logs into.
"""

from shipyard.autologging.autolog import LIBRARIES, autolog
from shipyard.autologging.options import AutologOptions
from shipyard.autologging.session import AUTOLOG_TAG, AutologWarning

__all__ = ["AUTOLOG_TAG", "LIBRARIES", "AutologOptions", "AutologWarning", "autolog"]
