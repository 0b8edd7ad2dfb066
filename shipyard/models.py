"""``shipyard.models``: log, register, version, alias, promote and load models.

The registry's module-level API, as :mod:`shipyard.tracking.fluent` is tracking's; it lives in
:mod:`shipyard.registry.fluent` and is re-exported here under the name users import.
"""

from shipyard.registry.fluent import *  # noqa: F403  (the public names, listed in its __all__)
from shipyard.registry.fluent import __all__  # noqa: F401
