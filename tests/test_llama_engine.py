"""The batched engine on a real (small) model: several sessions per step, prefix reuse,
persona-prompt states on disk, cancellation, and limits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Queue

import pytest

from common.turns import Turn
from providers.llama_engine import EngineError, LlamaEngine, Sampling
from providers.llama_engine.decoding import emit
from providers.llama_engine.records import _Request
from providers.local import to_openai_messages
from sim.persona import load_personas
from sim.prompt import build_messages

PERSONAS = load_personas()


def chat(pid: str, agent: str = "I'm sorry. What happened?") -> list[dict[str, str]]:
    p = PERSONAS[pid]
    return to_openai_messages(
        build_messages(p, [Turn("customer", p.opening_line), Turn("agent", agent)])
    )


def turn_two(pid: str, agent: str, reply: str, agent2: str) -> list[dict[str, str]]:
    """The prompt for the customer's second reply in a chat with persona ``pid``."""
    p = PERSONAS[pid]
    h = [
        Turn("customer", p.opening_line),
        Turn("agent", agent),
        Turn("customer", reply),
        Turn("agent", agent2),
    ]
    return to_openai_messages(build_messages(p, h))


def opening(pid: str) -> list[dict[str, str]]:
    p = PERSONAS[pid]
    return to_openai_messages(build_messages(p, [Turn("customer", p.opening_line)]))


@pytest.fixture
def engine(smollm2_path: Path, tmp_path: Path) -> Iterator[LlamaEngine]:
    eng = LlamaEngine(smollm2_path, n_ctx_seq=2048, n_slots=4, n_ctx=4096, prefix_dir=tmp_path)
    yield eng
    eng.close()


def reply(eng: LlamaEngine, messages: list[dict[str, str]], n: int = 16, seed: int = 1) -> str:
    return "".join(eng.stream(messages, Sampling(max_tokens=n, seed=seed)))


@pytest.mark.real_model
def test_sessions_are_decoded_together_and_each_gets_its_own_reply(engine: LlamaEngine) -> None:
    ids = list(PERSONAS)[:3]
    out: dict[str, str] = {}
    start = threading.Barrier(len(ids))

    def run(pid: str) -> None:
        start.wait()
        out[pid] = reply(engine, chat(pid), n=24)

    threads = [threading.Thread(target=run, args=(pid,)) for pid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert set(out) == set(ids) and all(text.strip() for text in out.values())
    assert engine.stats.max_batch_seqs >= 2  # one llama.cpp step carried several sessions
    assert len(set(out.values())) == len(ids)


@pytest.mark.real_model
def test_a_new_reply_goes_ahead_of_one_already_showing_text(engine: LlamaEngine) -> None:
    """First words first: while a newcomer has not finished its first sentence, a reply that
    is already on screen decodes only every third step, and both still finish."""
    shown = threading.Event()
    texts: dict[str, str] = {}

    def long_reply() -> None:
        text = ""
        for piece in engine.stream(
            chat("irate_gym_cancellation"), Sampling(max_tokens=160, seed=3)
        ):
            text += piece
            if any(m in text for m in (". ", "! ", "? ", "\n")):
                shown.set()
        texts["long"] = text
        shown.set()

    t = threading.Thread(target=long_reply)
    t.start()
    assert shown.wait(timeout=120)
    if "long" in texts:
        pytest.skip("the first reply finished before the second could start")
    texts["new"] = reply(engine, chat("confused_energy_bill"), n=24)
    t.join(timeout=300)
    assert texts["new"].strip() and texts["long"].strip()
    assert engine.stats.deferred > 0


@pytest.mark.real_model
def test_turn_two_reads_only_the_new_turn(engine: LlamaEngine) -> None:
    pid = "confused_energy_bill"
    first = reply(engine, chat(pid, "Hello Doreen, what does the bill say?"))
    messages = turn_two(
        pid, "Hello Doreen, what does the bill say?", first, "And what do you normally pay?"
    )
    assert reply(engine, messages).strip()
    full = len(engine.tokenize_chat(messages))
    assert 0 < engine.stats.last_prompt_read < 0.25 * full


@pytest.mark.real_model
def test_a_second_trainee_with_the_same_persona_does_not_cut_the_first_ones_state(
    engine: LlamaEngine,
) -> None:
    pid = "irate_gym_cancellation"
    first = reply(engine, chat(pid, "I'm sorry. What happened with the cancellation?"))
    # trainee B starts the same persona: the shared persona prompt is copied, not re-read
    assert reply(engine, chat(pid, "Hello, how can I help you today?")).strip()
    assert engine.stats.shared == 1
    assert engine.stats.last_prompt_read < 0.25 * len(engine.tokenize_chat(chat(pid)))
    # ... and trainee A's conversation is still all there: their turn 2 reads only the new turn
    messages = turn_two(
        pid,
        "I'm sorry. What happened with the cancellation?",
        first,
        "When did you first ask to cancel?",
    )
    assert reply(engine, messages).strip()
    assert engine.stats.last_prompt_read < 0.25 * len(engine.tokenize_chat(messages))


@pytest.mark.real_model
def test_persona_prompt_state_is_kept_on_disk_and_reused(
    smollm2_path: Path, tmp_path: Path
) -> None:
    pid = "rushed_airline_rebooking"
    first = LlamaEngine(smollm2_path, n_ctx_seq=2048, n_slots=2, n_ctx=4096, prefix_dir=tmp_path)
    try:
        first.warm(opening(pid))
        assert reply(first, chat(pid)).strip()
        assert first.stats.prefix_saves == 1
    finally:
        first.close()
    files = list(tmp_path.glob("*.state"))
    assert len(files) == 1

    # a fresh process (here: a fresh engine) starts from the saved state
    second = LlamaEngine(smollm2_path, n_ctx_seq=2048, n_slots=2, n_ctx=4096, prefix_dir=tmp_path)
    try:
        full = len(second.tokenize_chat(chat(pid)))
        assert reply(second, chat(pid)).strip()
        assert second.stats.prefix_loads == 1
        assert second.stats.last_prompt_read < 0.25 * full
    finally:
        second.close()

    # a damaged state file is a cache miss: the reply still comes, the file is dropped
    files[0].write_bytes(b"not a llama state")
    third = LlamaEngine(smollm2_path, n_ctx_seq=2048, n_slots=2, n_ctx=4096, prefix_dir=tmp_path)
    try:
        assert reply(third, chat(pid)).strip()
        assert third.stats.prefix_loads == 0
        assert third.stats.last_prompt_read == len(third.tokenize_chat(chat(pid)))
        assert not files[0].exists()
    finally:
        third.close()


@pytest.mark.real_model
def test_a_resumed_history_is_warmed_but_never_written_to_disk(engine: LlamaEngine) -> None:
    engine.warm(chat("grieving_cloud_photos", "I'm so sorry for your loss."), persist=False)
    assert reply(engine, chat("grieving_cloud_photos", "I'm so sorry for your loss.")).strip()
    assert engine.stats.prefix_saves == 0
    assert not list(engine.prefixes.folder.glob("*.state"))  # type: ignore[union-attr]


@pytest.mark.real_model
def test_a_reader_who_stops_early_frees_the_slot(smollm2_path: Path, tmp_path: Path) -> None:
    eng = LlamaEngine(smollm2_path, n_ctx_seq=2048, n_slots=1, n_ctx=2048, prefix_dir=tmp_path)
    try:
        stream = eng.stream(chat("irate_gym_cancellation"), Sampling(max_tokens=200, seed=1))
        next(stream)
        stream.close()  # the trainee left mid-reply
        # with one slot, this only finishes if the abandoned reply let go of it
        assert reply(eng, chat("confused_energy_bill")).strip()
    finally:
        eng.close()


@pytest.mark.real_model
def test_a_prompt_longer_than_the_context_is_refused_plainly(engine: LlamaEngine) -> None:
    long_agent = "Could you tell me more about that? " * 400
    with pytest.raises(EngineError, match="too long for the model's context"):
        reply(engine, chat("confused_energy_bill", long_agent))
    assert reply(engine, chat("confused_energy_bill")).strip()  # the engine still serves


def _emitted(pieces: list[str], stop: tuple[str, ...]) -> tuple[str, bool]:
    req = _Request(tokens=[], sampling=Sampling(stop=stop), out=Queue())
    stopped = False
    for piece in pieces:
        if emit(req, piece):
            stopped = True
            break
    text = ""
    while not req.out.empty():
        text += req.out.get()
    return text + ("" if stopped else req.held), stopped


def test_stop_strings_are_cut_even_when_split_across_tokens() -> None:
    assert _emitted(["Fine. ", "Age", "nt: hello"], ("Agent:",)) == ("Fine. ", True)
    assert _emitted(["Fine. Ag", "ain"], ("Agent:",)) == ("Fine. Again", False)
    assert _emitted(["no stops here"], ()) == ("no stops here", False)


def _mapped_rss(path: Path) -> int:
    """Resident bytes of this process's mappings of ``path`` (from /proc/self/smaps)."""
    total, inside = 0, False
    target = str(path.resolve())
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as f:
        for line in f:
            first = line.split(maxsplit=1)[0] if line.strip() else ""
            if not first.endswith(":"):  # a mapping's header: range perms offset dev inode path
                parts = line.split(maxsplit=5)
                inside = len(parts) == 6 and parts[5].strip() == target
            elif inside and first == "Rss:":
                total += int(line.split()[1]) * 1024
    return total


@pytest.mark.real_model
@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux only")
def test_loaded_weights_do_not_stay_resident_twice(smollm2_path: Path, tmp_path: Path) -> None:
    """After load the mapped file's pages are released (llama.cpp works from its own copy or
    faults them back in on use), and the model still generates."""
    eng = LlamaEngine(smollm2_path, n_ctx_seq=1024, n_slots=1, n_ctx=1024, prefix_dir=tmp_path)
    try:
        assert _mapped_rss(smollm2_path) < 0.1 * smollm2_path.stat().st_size
        assert reply(eng, chat("confused_energy_bill"), n=8).strip()
    finally:
        eng.close()


@pytest.mark.real_model
def test_a_conversation_longer_than_the_context_goes_on_without_reading_it_again(
    smollm2_path: Path,
) -> None:
    """Past the context, the oldest turns are left out a block at a time, and the engine drops
    the same span from its cache and shifts the rest back instead of re-reading the kept
    turns: every turn still reads about its own new message only."""
    from providers.local import LlamaCppChat

    model = LlamaCppChat(
        model_path=smollm2_path, n_ctx=2048, slots=2, max_tokens=24, seed=1, temperature=0.0
    )
    engine = model.batched_engine()
    p = PERSONAS["irate_broadband_outage"]
    history = [Turn("customer", p.opening_line)]
    reads: list[int] = []
    for i in range(30):
        history.append(
            Turn("agent", f"Thanks. Point {i}: when did it start, and what have you tried?")
        )
        text = "".join(str(c.content) for c in model.stream(build_messages(p, history)))
        history.append(Turn("customer", text.strip() or "Right."))
        reads.append(engine.stats.last_prompt_read)
    whole = engine.tokenize_chat(to_openai_messages(build_messages(p, history[:-1])))
    assert len(whole) > 2048 + 512  # the conversation outgrew the context
    assert engine.stats.shifted >= 2  # cut more than once, and each time the cache followed
    assert max(reads[1:]) < 100, reads  # the kept turns (over 1,000 tokens) never read again
    assert max(len(s.tokens) for s in engine._slots) > 1500  # most of the context was kept
    # what the practice loop asks before a turn, to restate facts from the turns left out
    assert model.dropped_for(build_messages(p, history[:-1])) >= 16


def test_llama_cpp_log_goes_through_logging_with_its_real_levels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Errors are logged as errors, info stays quiet, and the one harmless warning about the
    shipped Qwen file is not shown at every start."""
    import ctypes
    import logging

    import llama_cpp

    from providers.llama_engine import llama_glue as llama_engine

    llama_engine.route_llama_log(llama_cpp)
    cb = llama_engine._log_callback
    with caplog.at_level(logging.INFO, logger="llama_cpp"):
        cb(2, b"llama_model_loader: loaded meta data\n", ctypes.c_void_p(0))
        cb(3, b"load: control-looking token: 128247 '</s>' was not control-type\n", None)
        cb(3, b"a real warning\n", None)
        cb(4, b"llama_model_load: error loading model\n", None)
        cb(5, b" ...and the rest of that error\n", None)
    got = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "llama_cpp"]
    assert got == [
        (logging.WARNING, "a real warning"),
        (logging.ERROR, "llama_model_load: error loading model"),
        (logging.ERROR, " ...and the rest of that error"),
    ]
