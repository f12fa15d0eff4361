"""The Traffic Rules manager thread (SPEC §6): not built yet."""
