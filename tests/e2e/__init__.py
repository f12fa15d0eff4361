"""End-to-end tests: a real Kamailio and sipp routing calls through the panel."""
