"""Tests of the companies section."""
