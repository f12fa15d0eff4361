"""Reversible encryption for account passwords, which the switch needs in clear (SPEC §2)."""

import base64
import hashlib
import secrets
import string

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def _fernet() -> Fernet:
    """A Fernet key derived from ACCOUNT_PASSWORD_KEY."""
    key = current_app.config["ACCOUNT_PASSWORD_KEY"].encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key).digest()))


def encrypt(plain: str) -> str:
    """Encrypt a password; empty stays empty."""
    return _fernet().encrypt(plain.encode()).decode() if plain else ""


def decrypt(token: str) -> str:
    """Decrypt a stored password; empty or undecryptable (key changed) gives an empty string."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return ""


def generate_password(length: int = 16) -> str:
    """A strong password of letters and digits (no characters that trouble SIP configs)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.isdigit() for c in value)
            and any(c.islower() for c in value)
            and any(c.isupper() for c in value)
        ):
            return value
