"""Chat-model providers, chosen by name in settings. Each returns a LangChain chat model.

Built-ins register themselves through the same decorator a new provider would use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from common.settings import Settings

if TYPE_CHECKING:  # LangChain loads only with a model: checking a name stays cheap
    from langchain_core.language_models.chat_models import BaseChatModel

ProviderFactory = Callable[[Settings], "BaseChatModel"]
PROVIDERS: dict[str, ProviderFactory] = {}


class ProviderError(RuntimeError):
    """A provider can't be built from these settings; the message says how to fix it."""


def register(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    def deco(fn: ProviderFactory) -> ProviderFactory:
        PROVIDERS[name] = fn
        return fn

    return deco


def factory_for(name: str) -> ProviderFactory:
    """The factory registered as ``name``. The registry is the one list of provider names:
    ``Settings.provider`` is a plain string, checked here (by :func:`get_chat_model`, and by
    the command line before a command runs), so an unknown name fails with those it could be."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ProviderError(
            f"Unknown provider {name!r}; choose one of {sorted(PROVIDERS)}"
        ) from None


def get_chat_model(settings: Settings) -> BaseChatModel:
    return factory_for(settings.provider)(settings)


def local_model_path(settings: Settings) -> Path:
    """The GGUF to run: ``RAPPORT_MODEL_PATH`` if set, else the assembled default model."""
    from providers.model_files import ModelFileError, prepare

    if settings.model_path is not None:
        if not settings.model_path.exists():
            raise ProviderError(f"RAPPORT_MODEL_PATH={settings.model_path} does not exist")
        return settings.model_path
    try:
        return prepare(settings.models_dir)
    except ModelFileError as exc:
        raise ProviderError(str(exc)) from exc


@register("local")
def _local(settings: Settings) -> BaseChatModel:
    from providers.local import LlamaCppChat

    return LlamaCppChat(
        model_path=local_model_path(settings),
        model_name=settings.model,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        engine=settings.local_engine,
        slots=settings.local_slots,
        prefix_dir=settings.prefix_cache_dir,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        seed=settings.seed,
    )


@register("openai")
def _openai(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    if settings.base_url is None and settings.api_key.get_secret_value() in ("", "not-needed"):
        raise ProviderError(
            "The openai provider needs RAPPORT_API_KEY (for OpenAI) or RAPPORT_BASE_URL "
            "(for Ollama, vLLM or LM Studio)."
        )
    return ChatOpenAI(
        model=settings.model,
        base_url=settings.base_url,
        api_key=settings.api_key,
        temperature=settings.temperature,
        max_completion_tokens=settings.max_tokens,
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
        seed=settings.seed,
        streaming=True,
    )


@register("fake")
def _fake(settings: Settings) -> BaseChatModel:
    from providers.fake import from_script_file

    script = os.environ.get("RAPPORT_FAKE_SCRIPT")
    if not script:
        raise ProviderError(
            "The fake provider needs RAPPORT_FAKE_SCRIPT: a JSON file with a list of replies."
        )
    return from_script_file(Path(script))
