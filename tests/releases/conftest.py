"""The serving tests' registered model and real servers, for the A/B tests."""

from tests.serving.conftest import registered, start_server

__all__ = ["registered", "start_server"]
