"""Tests of the Routing Plans section."""
