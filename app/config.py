"""The one Settings object; every knob is an ONETABLE_* environment variable."""

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONETABLE_", env_file=".env", extra="ignore")

    # No URL -> an embedded PostgreSQL is started in data_dir/pg.
    database_url: str | None = None
    data_dir: Path = Path("var")
    database_name: str = "onetable"

    secret_key: SecretStr = SecretStr("dev-only-change-me-onetable-secret-key")
    token_ttl_minutes: int = 8 * 60
    # Production turns this off: GraphQL introspection and /docs.
    expose_docs: bool = True

    default_page_size: int = 50
    max_page_size: int = 1000
    statement_timeout_ms: int = 30_000
    # Request body caps (app/inputs.py): JSON and forms, multipart uploads (XLSX), GraphQL documents.
    max_body_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 25 * 1024 * 1024
    graphql_max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    return Settings()
