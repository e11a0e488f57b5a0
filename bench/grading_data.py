"""What the grading bench grades and ingests: a 10-agent-turn transcript, a synthetic
playbook (markdown with front matter, cut to a set number of chunks) and retrieval queries."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rubric.guidance import GuidanceStore

# A realistic 10-agent-turn chat: broadband outage, mixed good and weak agent turns.
TRANSCRIPT: list[tuple[str, str]] = [
    (
        "customer",
        "Right, I've been without internet since seven this morning and your status "
        "page says everything's fine. It is not fine. I work from home and I need this fixed "
        'today, not "within 72 hours".',
    ),
    (
        "agent",
        "Hi Gareth, I'm sorry you've been offline all morning. That's a rough start, "
        "especially on a work day. Can you tell me what lights the router is showing?",
    ),
    (
        "customer",
        "The broadband light is flashing red. I've restarted it twice already, before "
        "you ask. Twice.",
    ),
    (
        "agent",
        "Thanks for doing that already, I won't ask you to do it again. A flashing red "
        "light usually means the router can't get a signal from the line.",
    ),
    (
        "customer",
        "So what does that mean? Because I've got a 38 gig file to send by five and "
        "I'm tethering off my phone.",
    ),
    (
        "agent",
        "It sounds like you've got a lot riding on today, and tethering a file that "
        "size must be painfully slow. Let me run a line test now while we talk.",
    ),
    (
        "customer",
        "Fine. Your system said there's no fault, which frankly felt like being called a liar.",
    ),
    (
        "agent",
        "I understand why that landed badly. The status page only shows area outages, "
        "not faults on a single line, so it wouldn't have picked up your problem.",
    ),
    ("customer", "Well it should. Six years I've been with you and never complained once."),
    (
        "agent",
        "You're right, and I appreciate you sticking with us that long. The line test is "
        "back: there's no sync at the cabinet, so this is a fault on our side, not yours.",
    ),
    ("customer", "Finally. So when is someone coming out? And don't say 72 hours."),
    (
        "agent",
        "I know 72 hours is no use with a 5 pm deadline. I've booked the earliest "
        "engineer slot, which is 1 pm today, and marked it urgent because you work from home.",
    ),
    ("customer", "1 pm. Okay. That's tight but it might work. What if they're late?"),
    (
        "agent",
        "That's a fair worry. If the engineer hasn't arrived by 1:30, they'll call you, "
        "and you can ring me directly on the reference I'm about to give you.",
    ),
    ("customer", "And my mobile data? I've burned through most of it this morning."),
    (
        "agent",
        "Policy is policy, I'm afraid, we can't refund mobile data from another "
        "provider. Is there anything else?",
    ),
    ("customer", "Seriously? That's it? I've lost a morning's work because of your fault."),
    (
        "agent",
        "Sorry, that came out wrong. What I can do is credit three days of service to "
        "your account and send you a 4G backup dongle by courier this afternoon. Would that help?",
    ),
    ("customer", "Yes. Yes it would. Thank you. Tidy."),
    (
        "agent",
        "Great. So to sum up: engineer at 1 pm today, three days' credit, and a 4G "
        "dongle by courier. I've emailed all of that to you with your reference number.",
    ),
]

# Building blocks for synthetic playbook text (a made-up contact centre's manual).
TOPICS = [
    "refund requests",
    "late deliveries",
    "billing disputes",
    "service outages",
    "account lockouts",
    "cancellations",
    "damaged parts",
    "missed appointments",
    "price increases",
    "duplicate charges",
    "warranty claims",
    "slow broadband",
]
SENTENCES = [
    "When a customer raises {topic}, start by restating what they told you in your own words.",
    "Agents handling {topic} should check the account history before promising anything.",
    "Customers calling about {topic} are often on their second or third contact, so avoid "
    "asking them to repeat details already on the case notes.",
    "If {topic} has cost the customer time or money, say so plainly and acknowledge the impact.",
    "Never blame another team for {topic}; own the next step even if the cause sits elsewhere.",
    "Offer at least two concrete options for {topic} and give a time for each.",
    "For {topic}, a short written summary at the end of the chat reduces repeat contacts.",
    "Escalate {topic} to a team leader when the customer has waited more than {n} days.",
    "Our data shows that {n} percent of complaints about {topic} are resolved on first contact "
    "when the agent asks one open question before proposing a fix.",
    "Use the customer's name once or twice when discussing {topic}, not in every sentence.",
    "Avoid phrases such as 'calm down' or 'that's just policy' when a customer is upset "
    "about {topic}.",
    "Silence in a phone call about {topic} is fine; let the customer finish before you reply.",
    "Check understanding on {topic} by reading back the key facts and asking if you got "
    "them right.",
    "A credit for {topic} should be explained as a goodwill gesture, with the amount and "
    "the date it will appear.",
    "Record the outcome of {topic} cases in the notes field so the next agent sees it.",
]
QUERIES = [
    "I can hear how frustrating this has been for you.",
    "Let me make sure I've understood: you were charged twice this month?",
    "What would a good outcome look like for you today?",
    "I'll book an engineer for tomorrow morning and text you the time.",
    "That's just our policy, there's nothing I can do.",
    "Can you tell me more about what happened when you called last week?",
    "You're right to be upset, and I'm sorry we let you down.",
    "Calm down, please, shouting won't help.",
    "So the parcel arrived damaged and the replacement never came, is that right?",
    "I can offer a refund today or a replacement by Friday, whichever suits you.",
]


def grading_turns() -> list[dict[str, str]]:
    return [{"role": r, "text": t} for r, t in TRANSCRIPT]


def paragraph(rng: random.Random, topic: str) -> str:
    picks = rng.sample(SENTENCES, k=rng.randint(3, 4))
    return " ".join(s.format(topic=topic, n=rng.randint(2, 40)) for s in picks)


def write_playbook(
    folder: Path, store: GuidanceStore, files: int, chunks_per_file: int, seed: int = 7
) -> list[list[str]]:
    """Markdown files with front matter, each grown until the store's own splitter cuts it
    into ``chunks_per_file`` chunks. Returns each file's chunk texts, as ingest will see them."""
    from rubric.guidance import TAGS, split_front_matter

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    chunks: list[list[str]] = []
    for i in range(files):
        topic = TOPICS[i % len(TOPICS)]
        tags = [TAGS[i % len(TAGS)], TAGS[(i * 3 + 1) % len(TAGS)]]
        title = f"Handling {topic} (part {i + 1})"
        paras = [f"# {title}"]
        while len(store.splitter.split_text("\n\n".join(paras))) < chunks_per_file:
            paras.append(paragraph(rng, topic))
        front = (
            f"---\nid: playbook-{i:03d}\ntitle: {title}\ntags: [{', '.join(dict.fromkeys(tags))}]"
            "\nsource: Northwind contact-centre playbook\n---\n"
        )
        text = front + "\n\n".join(paras) + "\n"
        path = folder / f"playbook-{i:03d}.md"
        path.write_text(text, encoding="utf-8")
        _, body = split_front_matter(text, str(path))
        chunks.append(store.splitter.split_text(body.strip()))
    return chunks
