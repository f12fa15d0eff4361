"""Fixtures of the what-if tests: the routing tests' `world` (a customer and vendors V1-V3) reused."""

from tests.routing.conftest import world  # noqa: F401 - a fixture
