"""Settings, read from the environment (prefix ``MIXWISE_``) or passed in code.

Every setting is documented in ``docs/settings.md``; ``tests/test_docs.py`` fails when one is
missing there.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_WORKSPACE = "mixwise-workspace"
# Placeholder values people paste from examples; refused as secrets.
INSECURE_SECRETS = frozenset({"change-me", "changeme", "secret", "dev", "test", "mixwise"})


class Settings(BaseSettings):
    """Runtime configuration of mixwise."""

    model_config = SettingsConfigDict(env_prefix="MIXWISE_", extra="ignore")

    home: Path = Field(
        default=Path(DEFAULT_WORKSPACE),
        description="Workspace directory used when a command is given none.",
    )
    database_url: str | None = Field(
        default=None,
        description="State database URL (SQLAlchemy). Default: SQLite file state.db in the "
        "workspace. Teams: postgresql+psycopg://user@host/db.",
    )
    warehouse_path: Path | None = Field(
        default=None,
        description="DuckDB warehouse file. Default: warehouse.duckdb in the workspace.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Key that signs session cookies and CSRF tokens. Default: a random key "
        "generated once per workspace (file `secret.key`, mode 0600). Known placeholder "
        "values such as `change-me` are refused.",
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark the session cookie Secure (set true behind HTTPS).",
    )
    session_max_age: int = Field(
        default=8 * 3600, description="Seconds a login session stays valid."
    )
    login_max_attempts: int = Field(
        default=5,
        description="Failed logins allowed per username and client address per window.",
    )
    login_window_seconds: int = Field(
        default=300, description="Length of the login rate-limit window in seconds."
    )
    language: Literal["en", "zh_CN"] = Field(
        default="en", description="Default UI language (en or zh_CN); users can switch."
    )
    max_upload_mb: int = Field(default=200, description="Largest file the web upload accepts.")
    max_errors: int = Field(
        default=100, description="How many validation errors an import reports at most."
    )

    def checked_secret(self) -> str | None:
        """The configured secret, refusing placeholders and short keys."""
        key = self.secret_key
        if key is None:
            return None
        if key.lower() in INSECURE_SECRETS or len(key) < 16:
            raise ValueError(
                "MIXWISE_SECRET_KEY is a placeholder or shorter than 16 characters. Unset it "
                "to use the workspace's generated key, or set a long random string, e.g.\n"
                f"  export MIXWISE_SECRET_KEY={secrets.token_urlsafe(32)}"
            )
        return key
