"""Tests of the audit_views section."""
