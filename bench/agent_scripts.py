"""What the scripted trainee types, turn by turn, per persona (the chat latency and load
benches both play these)."""

from __future__ import annotations

# What a trainee might type, turn by turn. Unknown personas get the generic script.
AGENT_SCRIPTS: dict[str, list[str]] = {
    "irate_broadband_outage": [
        "I'm really sorry, Gareth. Being offline all day when you work from home is awful. "
        "Can you tell me what the lights on your router are showing right now?",
        "Thanks, that helps. I can see the line test this morning showed no sync, so this "
        "isn't something you've done. Have you had any storms or building work nearby?",
        "Understood. I know the 72-hour window is no good with a 5 pm deadline. I'm booking "
        "an engineer for the earliest slot today and flagging it as urgent.",
        "While we wait, I can add 50 GB of mobile data to your account at no cost so you "
        "can keep tethering. Would that help you get the upload done?",
        "I've sent the booking and the data top-up to your email. Is there anything about "
        "the engineer visit you'd like me to check before you go?",
    ],
    "confused_energy_bill": [
        "Hello Doreen, thanks for calling. A bill that big out of nowhere would worry "
        "anyone. Could you read me the dates printed at the top of the bill?",
        "Thank you. So that covers June to August. Does it say 'estimated' or 'actual' "
        "next to the meter readings?",
        "That explains a lot. The last few bills were estimates, and the new actual "
        "reading caught up with them. None of that is your fault.",
        "I can spread the £486.72 over the next twelve months so your direct debit only "
        "goes up a little. Would that be more manageable for you?",
        "Lovely. I'll set that up now and send you a letter explaining it. Is there anything "
        "on the bill you'd like me to go through again?",
    ],
}
GENERIC_SCRIPT = [
    "I'm sorry this has happened. Could you tell me a bit more about what's gone wrong?",
    "Thank you, that's helpful. When did you first notice the problem?",
    "That sounds really frustrating, and it makes sense you're upset. Let me check what I can do.",
    "Here's what I can offer: I'll escalate this today and call you back by 4 pm with an update.",
    "I've noted everything on your account. Is there anything else about this I should know?",
]


def script_for(persona_id: str, turns: int) -> list[str]:
    base = AGENT_SCRIPTS.get(persona_id, GENERIC_SCRIPT)
    return [base[i % len(base)] for i in range(turns)]
