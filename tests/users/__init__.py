"""Tests of the users section."""
