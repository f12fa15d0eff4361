"""Settings from the environment; SQLite under instance/ when DATABASE_URL is unset."""

import os
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


def _bool(name: str, default: bool) -> bool:
    """Read a boolean setting such as PANEL_SECURE_COOKIES=1."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _database_url() -> str:
    """DATABASE_URL, normalised to the psycopg 3 driver; SQLite under instance/ otherwise."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        INSTANCE_DIR.mkdir(exist_ok=True)
        return f"sqlite:///{INSTANCE_DIR / 'panel.sqlite3'}"
    return normalise_database_url(url)


def normalise_database_url(url: str) -> str:
    """Make postgres:// and postgresql:// URLs use psycopg 3, which is what requirements.txt ships."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in instance/."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    INSTANCE_DIR.mkdir(exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    """Default settings; every value can be overridden by an environment variable."""

    SECRET_KEY = _secret_key()
    # Key for the account passwords that the switch needs in clear (SPEC §2): encrypted, not hashed.
    ACCOUNT_PASSWORD_KEY = os.environ.get("ACCOUNT_PASSWORD_KEY") or SECRET_KEY
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Behind HTTPS set PANEL_SECURE_COOKIES=1 so cookies are never sent in clear.
    SESSION_COOKIE_SECURE = _bool("PANEL_SECURE_COOKIES", False)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_HTTPONLY = True
    # Reverse proxies in front of the panel (nginx, a load balancer) whose X-Forwarded-For/-Proto are trusted,
    # so the login rate limit counts the visitor's address, not the proxy's. 0: no proxy (the default).
    TRUSTED_PROXIES = int(os.environ.get("PANEL_TRUSTED_PROXIES", "0"))
    # Uploads (rate decks, rule files) are bounded; 64 MiB holds a 250,000-line rate deck.
    MAX_CONTENT_LENGTH = int(os.environ.get("PANEL_MAX_UPLOAD_MB", "64")) * 1024 * 1024
    # Login rate limit: failures allowed per user and per address within the window.
    LOGIN_MAX_FAILURES_PER_USER = int(os.environ.get("PANEL_LOGIN_MAX_FAILURES_PER_USER", "5"))
    LOGIN_MAX_FAILURES_PER_ADDRESS = int(os.environ.get("PANEL_LOGIN_MAX_FAILURES_PER_ADDRESS", "20"))
    LOGIN_WINDOW_SECONDS = int(os.environ.get("PANEL_LOGIN_WINDOW_SECONDS", "900"))
    PAGE_SIZE = int(os.environ.get("PANEL_PAGE_SIZE", "50"))
    # Traffic Rules manager (SPEC §6).
    MANAGER_ENABLED = _bool("PANEL_MANAGER_ENABLED", True)
    MANAGER_PERIOD_SECONDS = float(os.environ.get("PANEL_MANAGER_PERIOD_SECONDS", "10"))
    QUALITY_WINDOW_HOURS = float(os.environ.get("PANEL_QUALITY_WINDOW_HOURS", "24"))
    QUALITY_MIN_CALLS = int(os.environ.get("PANEL_QUALITY_MIN_CALLS", "10"))
    LIVE_CALL_MAX_SECONDS = int(os.environ.get("PANEL_LIVE_CALL_MAX_SECONDS", "14400"))
    # Rules expiring within this many days are marked in amber; the marks refresh every so many seconds.
    EXPIRY_HORIZON_DAYS = float(os.environ.get("PANEL_EXPIRY_HORIZON_DAYS", "7"))
    EXPIRY_REFRESH_SECONDS = int(os.environ.get("PANEL_EXPIRY_REFRESH_SECONDS", "60"))
    # The home page lists clients whose balance is below this (and every negative one).
    LOW_BALANCE = float(os.environ.get("PANEL_LOW_BALANCE", "100"))
    # A small generator of routed and billed demo calls while the panel runs (`make run` turns it on).
    DEMO_TRAFFIC = _bool("PANEL_DEMO_TRAFFIC", False)
