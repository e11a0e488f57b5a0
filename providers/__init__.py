"""Chat-model providers and the model runtime, chosen by name in settings.

``registry`` maps a provider name to a factory for a LangChain chat model (``local``, the
embedded model; ``openai``, any OpenAI-compatible server; ``fake``, scripted replies for
tests); ``local`` and ``llama_engine`` are the embedded model's runtime, ``model_files``
where its weights come from, and ``fake`` the scripted model. Nothing here knows about
personas or grading.
"""

from providers.registry import PROVIDERS, ProviderError, get_chat_model, register

__all__ = ["PROVIDERS", "ProviderError", "get_chat_model", "register"]
