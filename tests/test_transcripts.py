"""Reading real transcripts: each format, the speaker mapping step, and every kind of bad
file refused with a message that says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from training.transcripts import (
    MAX_BYTES,
    SpeakersUnclear,
    TranscriptError,
    detect_format,
    map_speakers,
    parse,
    read_file,
    role_of,
)

SAMPLES = ROOT / "docs" / "samples"

PREFIXED = b"""Chat with support, 12/03/2025
[10:02] Agent: Hi, thanks for contacting Northgate Bank. How can I help?
[10:03] Customer: My transfer hasn't arrived.
It was for my rent.
Note: it was 2,400 euros
[10:04] Agent: I'm sorry to hear that. When did you send it?
[10:05 PM] Customer: Monday.
10:06 Customer: Is it lost??
"""


def roles(transcript: object) -> list[str]:
    return [t.role for t in transcript.turns]  # type: ignore[attr-defined]


def test_text_with_role_prefixes_keeps_continuation_lines_and_drops_the_header() -> None:
    [t] = parse(PREFIXED)
    assert t.format == "text"
    assert roles(t) == ["agent", "customer", "agent", "customer"]
    assert (
        t.turns[1].text
        == "My transfer hasn't arrived.\nIt was for my rent.\nNote: it was 2,400 euros"
    )
    # two customer messages in a row become one turn, as a practice session stores them
    assert t.turns[3].text == "Monday.\nIs it lost??"
    assert all("Chat with support" not in x.text for x in t.turns)


@pytest.mark.parametrize(
    ("label", "role"),
    [
        ("Agent", "agent"),
        ("Support Advisor", "agent"),
        ("Tom (Agent)", "agent"),
        ("Customer Service", "agent"),
        ("Customer", "customer"),
        ("Caller", "customer"),
        ("Sarah - Customer", "customer"),
        ("System", "system"),
        ("Sarah", None),
    ],
)
def test_speaker_labels_are_mapped_by_their_role_word(label: str, role: str | None) -> None:
    assert role_of(label) == role


def test_names_as_speakers_ask_which_is_the_agent_then_parse() -> None:
    data = (
        b"Sarah: my parcel never came\nTom: Sorry Sarah, what's the order number?\nSarah: 12345\n"
    )
    with pytest.raises(SpeakersUnclear) as err:
        parse(data)
    assert err.value.speakers == ["Sarah", "Tom"]
    assert "Which of these speakers is the agent?" in str(err.value)
    [t] = parse(data, agents=["tom"])  # case-blind
    assert roles(t) == ["customer", "agent", "customer"]
    assert t.speakers == {"Sarah": "customer", "Tom": "agent"}


def test_one_named_speaker_next_to_a_role_word_is_settled_by_elimination() -> None:
    [t] = parse(b"Agent: Hello, how can I help?\nPriya Shah: My heater is broken.\n")
    assert t.speakers == {"Agent": "agent", "Priya Shah": "customer"}


def test_two_agents_after_a_transfer_are_both_mapped() -> None:
    data = (
        b"Tom: Hi, how can I help?\nSarah: My bill is wrong.\nTom: Let me transfer you.\n"
        b"Priya: Hi, I'm in billing. What's wrong with it?\nSarah: It's doubled.\n"
    )
    [t] = parse(data, agents=["Tom", "Priya"])
    assert roles(t) == ["agent", "customer", "agent", "customer"]


def test_system_lines_are_left_out() -> None:
    [t] = parse(b"System: Chat started\nAgent: Hi there\nCustomer: Hello\nSystem: Chat ended\n")
    assert [x.text for x in t.turns] == ["Hi there", "Hello"]


def test_naming_a_speaker_who_is_not_there_is_an_unknown_speaker() -> None:
    with pytest.raises(SpeakersUnclear, match="No speaker called bob"):
        parse(b"Sarah: hi\nTom: hello\n", agents=["Bob"])


def test_unknown_speakers_without_a_mapping_are_refused() -> None:
    data = b"Sarah: hi\nTom: hello\nDev: hey\nSarah: ok\nTom: right\nDev: yes\n"
    with pytest.raises(SpeakersUnclear) as err:
        parse(data)
    assert set(err.value.speakers) == {"Sarah", "Tom", "Dev"}


def test_csv_with_role_and_text_columns() -> None:
    data = (
        b'timestamp,speaker,message\n2025-02-02 18:40,customer,"Hi, I was charged twice."\n'
        b"2025-02-02 18:41,agent,When did you notice?\n"
    )
    [t] = parse(data, "chat.csv")
    assert t.format == "csv"
    assert [(x.role, x.text) for x in t.turns] == [
        ("customer", "Hi, I was charged twice."),
        ("agent", "When did you notice?"),
    ]


def test_csv_with_semicolons_and_names_for_roles() -> None:
    data = b"role;text\nAmira;Hello?\nSupport;Hi Amira, how can I help?\n"
    [t] = parse(data, "export.csv")
    assert roles(t) == ["customer", "agent"]


def test_csv_without_the_columns_says_which_it_found() -> None:
    with pytest.raises(TranscriptError, match=r"needs a header row.*This one has: who said, words"):
        parse(b"who said,words\nagent,hi\n", "x.csv", fmt="csv")


def test_the_rapport_grade_jsonl_round_trips() -> None:
    records = [
        {
            "id": "a",
            "turns": [{"role": "customer", "text": "x"}, {"role": "agent", "text": "y"}],
        },
        {
            "id": "b",
            "turns": [{"role": "agent", "text": "hi"}, {"role": "customer", "text": "yo"}],
        },
    ]
    data = "\n".join(json.dumps(r) for r in records).encode()
    found = parse(data, "grade.jsonl")
    assert [t.id for t in found] == ["a", "b"]
    assert [t.as_dicts() for t in found] == [r["turns"] for r in records]
    # one pretty-printed object is read too
    assert parse(json.dumps(records[0], indent=2).encode())[0].as_dicts() == records[0]["turns"]


def test_jsonl_with_a_bad_turn_names_the_line() -> None:
    good = json.dumps(
        {"id": "a", "turns": [{"role": "customer", "text": "x"}, {"role": "agent", "text": "y"}]}
    )
    bad = json.dumps({"id": "b", "turns": [{"role": "manager", "text": "x"}]})
    with pytest.raises(TranscriptError, match="Line 2, turn 0: each turn needs role"):
        parse(f"{good}\n{bad}\n".encode(), "x.jsonl")


def test_format_is_detected_from_the_name_then_the_content() -> None:
    assert detect_format("anything", "chat.csv") == "csv"
    assert detect_format('{"id": 1}', "chat.txt") == "jsonl"
    assert detect_format("role,text\nagent,hi", "") == "csv"
    assert detect_format("Agent: hi, there\nCustomer: hello", "") == "text"


# --- bad files: each refused with a clear message, none half-read --------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"  \n\n\t \n", "The file is empty"),
        (b"Customer: hello?\nCustomer: anyone there?\n", "No agent turns found"),
        (b"Agent: Hello\nAgent: How can I help?\n", "No customer turns found"),
        (b"just some words with no speakers at all", "No speakers found"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary data"),
        (bytes(range(1, 32)) * 40, "binary data"),
        (b"role,text\n", "no messages"),
    ],
    ids=[
        "empty",
        "blank",
        "no-agent",
        "no-customer",
        "no-speakers",
        "png",
        "controls",
        "csv-header-only",
    ],
)
def test_bad_input_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(TranscriptError, match=message):
        parse(data)


def test_a_5_mb_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    big = tmp_path / "huge.txt"
    line = b"Customer: my broadband is down again and nobody is fixing it\nAgent: sorry\n"
    big.write_bytes(line * (5 * 1024 * 1024 // len(line) + 1))
    with pytest.raises(
        TranscriptError, match=r"The file is 5\.0 MB; the most a transcript may be is 1024 KB"
    ):
        read_file(big)  # refused by its size, unread
    with pytest.raises(TranscriptError, match=r"5\.0 MB"):
        parse(big.read_bytes())
    assert len(read_file(SAMPLES / "chat-broadband.txt")) < MAX_BYTES


def test_utf16_and_windows_exports_are_read() -> None:
    text = "Agent: Hi, café?\nCustomer: Yes — please\n"
    assert parse(text.encode("utf-16"))[0].turns[0].text == "Hi, café?"
    assert parse(text.encode("cp1252"))[0].turns[1].text == "Yes — please"


def test_the_mapping_step_needs_a_known_agent_label() -> None:
    assert map_speakers(["Agent", "Customer"]) == {"Agent": "agent", "Customer": "customer"}
    assert map_speakers(["Sam", "Jo"], agents=["Jo"]) == {"Sam": "customer", "Jo": "agent"}


@pytest.mark.parametrize("name", ["chat-broadband.txt", "chat-refund.csv", "chats.jsonl"])
def test_the_shipped_samples_parse(name: str) -> None:
    agents = ["Tom"] if name.endswith(".txt") else []
    found = parse((SAMPLES / name).read_bytes(), name, agents=agents)
    assert found and all(t.agent_turns >= 2 for t in found)
