"""What the simulated people say: ticket stories with their bot hand-off, replies,
product feedback and ratings.  Drawn from the run's random streams, so a seed
replays the same words."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tickets.models import FeedbackKind


@dataclass(frozen=True)
class Story:
    subject: str
    body: str
    summary: str
    intent: str
    transcript: list


STORIES = {
    "general": [
        (
            "How do I change my address?",
            "change_address",
            "I moved last week and the app will not let me save my new address.",
        ),
        (
            "Question about my plan",
            "plan_question",
            "Which plan includes free transfers abroad? The page is not clear to me.",
        ),
        (
            "Cannot find my statement",
            "statement_missing",
            "I need my March statement for my landlord and cannot find it anywhere.",
        ),
    ],
    "payments": [
        (
            "Card payment declined",
            "card_declined",
            "My card was declined at the supermarket although I have money on the account.",
        ),
        (
            "Payment stuck as pending",
            "payment_pending",
            "A payment to my landlord has been pending for three days.",
        ),
        ("Charged twice", "double_charge", "I was charged twice for the same train ticket."),
    ],
    "refunds": [
        (
            "Refund not received",
            "refund_missing",
            "The shop says they refunded me ten days ago but I see nothing.",
        ),
        (
            "How long does a refund take?",
            "refund_timing",
            "I returned a jacket; when will the money be back on my card?",
        ),
    ],
    "account": [
        (
            "Locked out of my account",
            "login_locked",
            "I entered the wrong code too many times and now I am locked out.",
        ),
        (
            "Verify my identity again?",
            "kyc_repeat",
            "The app asks me to verify my identity again. Is this real?",
        ),
    ],
    "disputes": [
        (
            "I do not recognise this payment",
            "unknown_charge",
            "There is a payment of 89.90 to a shop I have never heard of.",
        ),
    ],
    "technical": [
        (
            "The app crashes on start",
            "app_crash",
            "Since the update the app closes as soon as I open it.",
        ),
        (
            "Notifications stopped",
            "push_missing",
            "I no longer get a notification when I pay with my card.",
        ),
    ],
}

BOT_LINES = [
    "I can help with that. Could you tell me a bit more?",
    "I have checked the usual causes and could not fix it.",
    "Let me bring in a person from our team who can look at your account.",
]

GREETINGS = [
    "Hi, I'm {name}. I have read what you told our assistant; let me look into it.",
    "Hello! {name} here. Thanks for waiting, I'm on it now.",
    "Hi, this is {name}. I can see the conversation with the bot, so no need to repeat.",
]
CLOSINGS = [
    "That should be sorted now. Anything else I can help with?",
    "Done: you will see the change within a few minutes. Have a good day!",
    "I have fixed it on our side and added a note to your account. Take care!",
]
CUSTOMER_REPLIES = [
    "Thank you, that helps.",
    "OK, I see it now.",
    "Great, thanks for the quick answer!",
    "It still says pending on my side, is that normal?",
]
FEEDBACK = {
    "general": [("statements", FeedbackKind.CONFUSING, "Customers cannot find past statements.")],
    "payments": [
        ("card-payments", FeedbackKind.BUG, "Card declines show no reason in the app."),
        ("transfers", FeedbackKind.CONFUSING, "Pending transfers give no expected date."),
    ],
    "refunds": [
        ("refunds", FeedbackKind.FEATURE_REQUEST, "Show the refund's progress to customers.")
    ],
    "account": [("app-login", FeedbackKind.BUG, "The lockout after wrong codes lasts too long.")],
    "disputes": [("disputes", FeedbackKind.FEATURE_REQUEST, "Let customers dispute from the app.")],
    "technical": [("mobile-app", FeedbackKind.BUG, "The app crashes on start after the update.")],
}
COMMENTS = {5: "Quick and kind, thank you!", 4: "Good help.", 3: "OK.", 2: "Took long.", 1: ""}


def story(rng: random.Random, category: str) -> Story:
    subject, intent, body = rng.choice(STORIES.get(category) or STORIES["general"])
    transcript = [
        {"role": "user", "text": body},
        {"role": "bot", "text": BOT_LINES[0]},
        {"role": "user", "text": "I tried that already."},
        {"role": "bot", "text": rng.choice(BOT_LINES[1:])},
    ]
    summary = f"Customer: {body} The assistant could not resolve it."
    return Story(subject=subject, body=body, summary=summary, intent=intent, transcript=transcript)


def agent_line(rng: random.Random, kind: str, category: str, name: str) -> str:
    lines = GREETINGS if kind == "greeting" else CLOSINGS
    return rng.choice(lines).format(name=name or "your agent")


def customer_line(rng: random.Random, category: str) -> str:
    return rng.choice(CUSTOMER_REPLIES)


def feedback(rng: random.Random, category: str) -> tuple[str, str, str]:
    return rng.choice(FEEDBACK.get(category) or FEEDBACK["general"])


def rating(rng: random.Random, *, waited_long: bool) -> tuple[int, str]:
    weights = [4, 6, 14, 36, 40] if waited_long else [1, 2, 7, 30, 60]
    score = rng.choices([1, 2, 3, 4, 5], weights=weights)[0]
    return score, COMMENTS[score] if rng.random() < 0.4 else ""
