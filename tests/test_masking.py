"""Personal data masked in imported conversations, and the near-misses a trainee needs kept:
order and booking references, dates, times, prices, the last four digits of a card."""

from __future__ import annotations

import pytest

from training.masking import company_names, find_names, find_pii, mask_text, mask_texts


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # names, by cue
        ("Hi, my name is Sarah Jones.", "Hi, my name is [NAME]."),
        (
            "This is Sam from Northgate Bank, how can I help?",
            "This is [NAME] from Northgate Bank, how can I help?",
        ),
        ("I'm Priya, I rang yesterday.", "I'm [NAME], I rang yesterday."),
        ("I spoke to Mrs Okafor on Tuesday.", "I spoke to Mrs [NAME] on Tuesday."),
        ("Thanks Dave, that's great.", "Thanks [NAME], that's great."),
        ("Please can you help\n- Margaret", "Please can you help\n- [NAME]"),
        ("The account is in the name of Thomas O'Neill.", "The account is in the name of [NAME]."),
        # emails
        ("Email me at sarah.jones+bills@example.co.uk please", "Email me at [EMAIL] please"),
        # phones: valid UK and US numbers, international form, and a cued fictional range
        ("Call me on 020 7946 0018", "Call me on [PHONE]"),
        ("my number is +44 20 7946 0958", "my number is [PHONE]"),
        ("Reach me at (415) 555-2671 after 5", "Reach me at [PHONE] after 5"),
        ("my mobile is 07700 900461", "my mobile is [PHONE]"),
        # postcodes
        ("It's 12 Elm Road, M14 5RT.", "It's 12 Elm Road, [POSTCODE]."),
        ("postcode sw1a 1aa", "postcode [POSTCODE]"),
        ("Springfield, IL 62704", "Springfield, IL [POSTCODE]"),
        ("Toronto M5V 2T6", "Toronto [POSTCODE]"),
        # cards: Luhn-valid runs, and any run after a card cue
        ("It was 4111 1111 1111 1111 I think", "It was [CARD] I think"),
        ("card number 4929-1234-5678-9008", "card number [CARD]"),
        ("5555555555554444", "[CARD]"),
        # account numbers
        ("Account number 40318855, thanks", "Account number [ACCOUNT], thanks"),
        ("sort code 20-00-00 account 55779911", "sort code [ACCOUNT] account [ACCOUNT]"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "IBAN [ACCOUNT]"),
        ("membership no. MB-0048812", "membership no. [ACCOUNT]"),
    ],
)
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert mask_text(text).text == masked


@pytest.mark.parametrize(
    "text",
    [
        "My order number is 10293847 and it still hasn't come.",
        "Order #A-10293 was £89.00 on 28/01/2025.",
        "ref NGB-INTL-88231645, tracking 1Z999AA10123456784",
        "Booking ref 4829103 for flight BA2490 on 3 March 2024 at 14:30.",
        "I paid $1,299.00 on 2024-03-12 and £34.99 on 12.03.2024.",
        "The engineer comes between 8 and 12 tomorrow.",
        "the card ending 4821 was charged",
        "invoice 2024-0012345 says 2,071.38",
        "order number 7700900123",
        "case 5000 1234 5678 90",
        "This is Northgate Bank, how can I help?",
        "I'm really annoyed. I'm Fine. It is Monday.",
        "Thanks Again! Hello Everyone.",
        "I've been a customer for 12 years and have 2 kids.",
        "It happened on 12-03-24 at about 9.",
    ],
)
def test_near_misses_are_kept(text: str) -> None:
    assert find_pii(text) == [], [text[s.start : s.end] for s in find_pii(text)]
    assert mask_text(text).text == text


def test_a_name_found_once_is_masked_everywhere_in_the_conversation() -> None:
    texts = [
        "Hi, I'm Sarah Jones and my broadband is down.",
        "Hello Sarah, I'm sorry. Can you tell me more?",
        "Jones is my married name, the account might be under Sarah Patel.",
    ]
    out, counts = mask_texts(texts)
    assert out == [
        "Hi, I'm [NAME] and my broadband is down.",
        "Hello [NAME], I'm sorry. Can you tell me more?",
        "[NAME] is my married name, the account might be under [NAME] Patel.",
    ]
    assert counts["name"] == 4


def test_speaker_names_are_masked_where_they_appear() -> None:
    out, _ = mask_texts(["thanks tom, sorted", "Tom said it would be today"], names=["Tom"])
    assert out == ["thanks tom, sorted", "[NAME] said it would be today"]


def test_masking_is_stable_on_masked_text() -> None:
    once = mask_text("I'm Sarah, sarah@example.com, 020 7946 0018, LS6 2QT").text
    assert once == "I'm [NAME], [EMAIL], [PHONE], [POSTCODE]"
    assert mask_text(once).text == once


def test_counts_say_what_was_masked() -> None:
    m = mask_text("Call 020 7946 0018 or 020 7946 0019, email a@b.io, card 4111111111111111")
    assert dict(m.counts) == {"phone": 2, "email": 1, "card": 1}


def test_companies_are_not_names() -> None:
    texts = [
        "Thanks for contacting Swiftpost Couriers, I'm Priya.",
        "This is Brightline Broadband.",
    ]
    assert company_names(texts)[:2] == ["Swiftpost Couriers", "Brightline Broadband"]
    assert find_names(texts) == {"Priya"}


def test_a_realistic_chat_is_masked_and_keeps_what_the_trainee_needs() -> None:
    chat = [
        "Hi, thanks for contacting Brightline Broadband, you're chatting with Tom.",
        "Hi Tom, it's Sarah Jones. Account number 40318855, postcode LS6 2QT. "
        "My mobile is 07700 900461, or email sarah.jones@example.com",
        "Thanks Sarah. I can see a fault, reference INC-20250314-7781.",
        "I paid £34.99 and ordered the upgrade, order number BB-558120, due on 17/03/2025.",
    ]
    out, counts = mask_texts(chat)
    joined = " ".join(out)
    for secret in ("Tom", "Sarah", "Jones", "40318855", "LS6 2QT", "07700", "example.com"):
        assert secret not in joined
    for kept in ("Brightline Broadband", "INC-20250314-7781", "£34.99", "BB-558120", "17/03/2025"):
        assert kept in joined
    assert counts == {"name": 4, "account": 1, "postcode": 1, "phone": 1, "email": 1}
