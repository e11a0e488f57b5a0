"""Continuous batching for the embedded model: several sessions decode in one llama.cpp step.

One llama.cpp context holds up to ``n_slots`` conversations side by side (one sequence each,
sharing a KV cache of ``n_ctx`` cells). A single worker thread owns the context. Every step it
decodes one token for each reply in progress and, in the same batch, reads a chunk of any new
prompt, so a trainee who just pressed Send waits for one chunk of their own prompt and a few
shared steps, not for other trainees' whole replies. On 2 cores a step with four sequences
costs about twice a step with one (measured in bench/load.py), so four sessions get roughly
twice the tokens per second that one shared, locked model gives them.

Prompt reuse: a request takes the idle slot whose tokens share the longest prefix with its
prompt, so turn N of a chat reads only the new turn. Persona prompts are also kept on disk
(``warm``): the state of a prompt prefix is saved once with ``llama_state_seq_save_file`` and
loaded into a slot the next time any session starts with that persona, instead of reading
~750 prompt tokens again (~10 s on 2 cores).

Interface: :meth:`LlamaEngine.stream` yields text pieces for a list of chat messages and
raises :class:`EngineError` for a request the engine can't serve (prompt too long).

Modules: ``records`` (requests, slots, sampling, statistics), ``llama_glue`` (the model file's
mapped pages, llama.cpp's log), ``prefixes`` (token prefixes and the prefix states kept on
disk), ``decoding`` (a request's sampler, a token's bytes, stop strings held back) and
``engine`` (:class:`LlamaEngine`: scheduling and the worker loop).
"""

from providers.llama_engine.engine import LlamaEngine
from providers.llama_engine.llama_glue import release_mapped_weights, route_llama_log
from providers.llama_engine.records import EngineError, EngineStats, Sampling

__all__ = [
    "EngineError",
    "EngineStats",
    "LlamaEngine",
    "Sampling",
    "release_mapped_weights",
    "route_llama_log",
]
