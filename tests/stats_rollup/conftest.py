"""Fixtures of the hourly call figures' tests: the small carrier of tests/manager/conftest.py."""

from tests.manager.conftest import carrier  # noqa: F401 - the fixture, shared
