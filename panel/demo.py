"""Demo data: placeholder until written."""

LOGIN_HELP = ""


def load(if_empty: bool = False) -> bool:
    """Load demo data."""
    return False
