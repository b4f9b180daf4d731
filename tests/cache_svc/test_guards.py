"""The safety rules: polarity, negation, numbers, and what is never stored."""

from __future__ import annotations

import pytest

from cache_svc import guards
from tests.cache_svc.conftest import read_jsonl


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I block my card?", "How do I unblock my card?"),
        ("Can I withdraw cash abroad?", "Can't I withdraw cash abroad?"),
        ("Can I pay by card?", "Can I not pay by card?"),
        ("Can I pay by card?", "I cannot pay by card"),
        ("How do I open an account?", "How do I close an account?"),
        ("How do I increase my limit?", "How do I decrease my limit?"),
        ("How do I add a payee?", "How do I remove a payee?"),
        ("How do I start a standing order?", "How do I stop a standing order?"),
        ("How do I turn on notifications?", "How do I turn off notifications?"),
        ("How do I enable notifications?", "How do I disable notifications?"),
        ("Is there a fee for credit cards?", "Is there a fee for debit cards?"),
        ("What is the maximum withdrawal?", "What is the minimum withdrawal?"),
        ("Can I deposit cash here?", "Can I withdraw cash here?"),
        ("How do I log in?", "How do I log out?"),
        ("How do I subscribe to alerts?", "How do I unsubscribe from alerts?"),
        ("Transfers over the limit", "Transfers under the limit"),
        ("Can I pay with my card?", "Can I pay without my card?"),
        ("How do I connect my account?", "How do I disconnect my account?"),
    ],
)
def test_opposites_have_different_signatures(a: str, b: str) -> None:
    assert guards.signature(a) != guards.signature(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I block my card?", "how can I freeze my card"),
        ("How do I enable contactless?", "How can I turn on contactless?"),
        ("How do I set up a direct debit?", "How do I create a direct debit?"),
        ("Can I sign in with my fingerprint?", "Can I log in with my fingerprint?"),
        ("How do I reopen my account?", "How do I open my account?"),
        ("Can I send twenty thousand dollars?", "Can I send $20,000?"),
        ("Can I send 20k USD?", "can I send 20 thousand dollars"),
        ("Is the rate 1.5%?", "Is the rate 1.5 percent?"),
        ("My card is damaged, how do I get a new one?", "How do I get a replacement card?"),
        ("Am I able to pay?", "Can I pay?"),
        ("May I open an account?", "Can I open an account?"),
    ],
)
def test_paraphrases_keep_their_signature(a: str, b: str) -> None:
    assert guards.signature(a) == guards.signature(b)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("send twenty thousand dollars", {"n:20000", "cur:usd"}),
        ("send $20,000", {"n:20000", "cur:usd"}),
        ("send 20k usd", {"n:20000", "cur:usd"}),
        ("a hundred and twenty euros", {"n:120", "cur:eur"}),
        ("one hundred and five", {"n:105"}),
        ("twelve hundred", {"n:1200"}),
        ("1.5 million pounds", {"n:1500000", "cur:gbp"}),
        ("pay on 05/03/2024", {"date:5/3/2024"}),
        ("open at 9am on Monday", {"n:9", "ampm:am", "day:mon"}),
        ("open until 17:00", {"time:17:00"}),
        ("on the 5th of March", {"n:5", "month:3"}),
        ("in May", {"month:5"}),
        ("may I pay tomorrow", {"day:tomorrow"}),
        ("the first payment", {"n:1"}),
        ("interest of 3.50%", {"n:3.5", "unit:%"}),
        ("a new one", set()),
        ("what are your opening hours", set()),
    ],
)
def test_numbers(text: str, expected: set[str]) -> None:
    assert guards.numbers(text) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Can I transfer $500?", "Can I transfer $5000?"),
        ("Can I withdraw twenty thousand dollars?", "Can I withdraw two thousand dollars?"),
        ("fee for 100 euros", "fee for 100 dollars"),
        ("is it 3.5%", "is it 5.3%"),
        ("pay on March 5", "pay on March 15"),
        ("open on Saturday", "open on Sunday"),
        ("open until 5 pm", "open until 5 am"),
        ("pay on 03/05/2024", "pay on 05/03/2024"),
        ("the first transfer", "the second transfer"),
    ],
)
def test_changed_numbers_change_the_signature(a: str, b: str) -> None:
    assert guards.signature(a) != guards.signature(b)


def test_signature_key_is_stable_and_short() -> None:
    key = guards.signature("Can I send $20,000 on Monday?").key
    assert key == guards.signature("can i send twenty thousand dollars on monday").key
    assert len(key) == 16


def test_normalize() -> None:
    assert guards.normalize("  What ARE your   hours?! ") == "what are your hours"
    assert guards.normalize("Can\u2019t I?") == "can't i"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Your card number is 4111 1111 1111 1111.", "a card number"),
        ("Card 4111-1111-1111-1111 is blocked", "a card number"),
        ("Your balance is $1,234.56.", "a balance or amount tied to the customer"),
        ("Your available balance is currently £20.", "a balance or amount tied to the customer"),
        ("You have $50 left this month.", "a balance or amount tied to the customer"),
        ("You owe 300 euros.", "a balance or amount tied to the customer"),
        ("Your last payment of $120 arrived on 3 May.", "a balance or amount tied to the customer"),
        ("Write to jane.doe@example.com", "an e-mail address"),
        ("Call me on +44 7700 900123", "a phone number"),
        ("Call 555-0100 now", "a phone number"),
        ("Your account 12345678 is open", "an account number"),
        ("account number: 4521", "an account number"),
        ("Pay to GB82 WEST 1234 5698 7654 32", "an IBAN account number"),
        ("The card ending in 4242 is blocked", "a masked card or account number"),
        ("Card **** 4242", "a masked card or account number"),
        ("SSN 123-45-6789", "a social security number"),
        ("sort code 12-34-56", "a sort code"),
    ],
)
def test_personal_data_is_found(text: str, reason: str) -> None:
    assert guards.personal_data(text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "The fee is $5 per month.",
        "Transfers over 10,000,000 dollars need approval.",
        "Branches open 9:00 to 17:00 on weekdays, 9.00-13.00 on Saturdays.",
        "The minimum payment is 5% of your balance.",
        "Your card works worldwide.",
        "Rates for 2023-2024 are on our website.",
        "Wire transfers cost $25 and take 1-2 business days.",
        "Dates like 2024-05-03 are fine.",
        "Our SWIFT code is ABCDUS33.",
        "If your balance falls below the minimum, we tell you.",
    ],
)
def test_general_answers_pass(text: str) -> None:
    assert guards.personal_data(text) is None


@pytest.mark.parametrize(
    "answer",
    [
        "I've blocked your card.",
        "Your card has been blocked.",
        "Done: we have sent the money.",
        "Your transfer was scheduled for Monday.",
        "Your card is now unblocked.",
    ],
)
def test_confirmations_of_actions_are_not_cached(answer: str) -> None:
    assert guards.action_done(answer)
    assert guards.refusal("Block my card", answer, {}) == "answer confirms an action on the customer's account"


@pytest.mark.parametrize(
    "answer",
    [
        "Block your card in the app under Cards.",
        "If your payment was declined, check your limit.",
        "Once your card has been blocked, we send a new one.",
        "I can help you block your card.",
        "We block cards at once when you report them.",
    ],
)
def test_general_instructions_are_not_confirmations(answer: str) -> None:
    assert not guards.action_done(answer)


def test_questions_may_say_what_i_did() -> None:
    assert guards.refusal("I have reset my PIN, now what?", "Use the new PIN at your next payment.", {}) is None


def test_luhn() -> None:
    assert guards.luhn_valid("4111111111111111")
    assert guards.luhn_valid("79927398713")
    assert not guards.luhn_valid("4111111111111112")


def test_allowed_contacts_are_public() -> None:
    answer = "Call us on 0800 123 456 or write to help@bank.example."
    assert guards.personal_data(answer) == "an e-mail address"
    assert guards.personal_data(answer, ["0800123456", "help@bank.example"]) is None
    assert guards.personal_data("Call 0800 999 111", ["0800 123 456"]) == "a phone number"


def test_refusal_names_the_field() -> None:
    assert guards.refusal("q", "Your balance is $5.", {}) == "answer holds a balance or amount tied to the customer"
    assert guards.refusal("is 4111111111111111 mine?", "We cannot say.", {}) == "query holds a card number"
    refused = guards.refusal("q", "a", {"cacheable": "FALSE"})
    assert refused == "metadata marks the entry not cacheable (cacheable=false)"
    assert guards.refusal("q", "a", {"cacheable": "true"}) is None


def test_data_sets_signatures() -> None:
    """Every opposite pair differs in signature; every paraphrase pair keeps it; no row holds personal data."""
    for row in read_jsonl("opposites.jsonl"):
        assert guards.signature(row["stored"]) != guards.signature(row["probe"]), row
    for row in read_jsonl("paraphrases.jsonl"):
        assert guards.signature(row["query"]) == guards.signature(row["paraphrase"]), row
        assert guards.refusal(row["query"], row["answer"], {}) is None, row
