"""Tests of the reference data: rate tables, code decks, time profiles, policies, DIDs, billing increments."""
