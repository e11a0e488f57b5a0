"""Settings from ``RAPPORT_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rapport"


class Settings(BaseSettings):
    """Everything a deployment can change without touching code."""

    model_config = SettingsConfigDict(
        env_prefix="RAPPORT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # A name registered in providers/registry.py, the one list of them (local, openai and fake
    # are built in). It is checked there, not here: common sits below providers.
    provider: str = Field("local", description="Which chat model plays the customer.")
    model: str = Field(
        "qwen2.5-coder-1.5b-instruct-q4_k_m",
        description="Model name: the embedded GGUF for 'local', or the served model for 'openai'.",
    )
    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1 for Ollama."
    )
    api_key: SecretStr = Field(SecretStr("not-needed"), description="API key for 'openai'.")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(160, ge=16, le=2048, description="Cap on one customer reply.")
    request_timeout: float = Field(60.0, gt=0, description="Seconds before an LLM call times out.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries for transient LLM errors.")
    seed: int | None = Field(
        None, description="Sampling seed, for reproducible customer replies (e.g. in evaluation)."
    )

    grader_model: Literal["turn_model", "exemplar"] = Field(
        "turn_model",
        description="The default grader: the fine-tuned turn model, or the earlier exemplar "
        "classifier (kept for comparison).",
    )
    judge: bool = Field(
        True, description="With the openai provider, also grade with the LLM judge."
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = Field(
        None,
        description="Session database URL, e.g. postgresql+psycopg://user@127.0.0.1:5432/rapport "
        "for many trainees. Default: the SQLite file db_path in the data dir.",
    )
    persona_dir: Path | None = Field(
        None,
        description="The persona library folder (the Persona Studio writes here). "
        "Default: the shipped personas/ folder.",
    )
    model_path: Path | None = Field(
        None, description="A GGUF file to use instead of the assembled default model."
    )
    n_ctx: int = Field(4096, ge=512, description="Context window of the embedded model.")
    n_threads: int | None = Field(None, description="CPU threads for the embedded model.")
    local_engine: Literal["batched", "single"] = Field(
        "batched",
        description="How the embedded model serves several sessions: 'batched' decodes them "
        "together in one llama.cpp context (providers/llama_engine/); 'single' shares one model "
        "behind a lock, one reply at a time.",
    )
    local_slots: int = Field(
        8, ge=1, le=64, description="Sessions the batched engine decodes at once."
    )
    cache_dir: Path | None = Field(
        None,
        description="Where saved persona-prompt states go (they make a session's first reply "
        "fast). Default: $XDG_CACHE_HOME/rapport, else ~/.cache/rapport. Safe to delete.",
    )

    chroma_host: str | None = Field(
        None, description="Use a Chroma server (HttpClient) instead of the data dir's store."
    )
    chroma_port: int = Field(8000, ge=1, le=65535)

    host: str = "127.0.0.1"
    port: int = Field(7860, ge=0, le=65535)

    auth: bool = Field(
        False,
        description="Require sign-in (accounts from 'rapport users add'). RAPPORT_AUTH=on/off.",
    )
    allow_public: bool = Field(
        False,
        description="Confirm serving a non-loopback host without sign-in (see training/users.py).",
    )

    @field_validator("auth", "allow_public", mode="before")
    @classmethod
    def _on_off(cls, v: object) -> object:
        """Accept on/off (and true/false, yes/no, 1/0) in any case, with spaces around."""
        if isinstance(v, str):
            word = v.strip().lower()
            if word in ("on", "true", "yes", "1"):
                return True
            if word in ("off", "false", "no", "0", ""):
                return False
            raise ValueError(f"expected on or off, got {v!r}")
        return v

    max_message_chars: int = Field(2000, ge=1, description="Longest trainee message accepted.")
    max_turns: int = Field(60, ge=2, description="Most agent turns in one session.")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "rapport.sqlite3"

    @property
    def prefix_cache_dir(self) -> Path:
        base = (
            self.cache_dir
            or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rapport"
        )
        return base / "prefix-states"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)


def get_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
