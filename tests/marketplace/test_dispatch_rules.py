"""The dispatch rules, table by table: eligibility, ranking, batch matching, surge."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketplace import pricing
from marketplace.dispatch import matching, rules

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def agent(agent_id=1, **overrides) -> rules.Candidate:
    base = rules.Candidate(
        agent_id=agent_id,
        status="approved",
        presence="online",
        languages=frozenset({"en"}),
        skills=frozenset({"payments"}),
        capacity=2,
        load=0,
        has_pending_offer=False,
        booked_now=False,
        idle_since=T0,
        quality=Decimal("4.0"),
    )
    return replace(base, **overrides)


def ticket(ticket_id=1, **overrides) -> rules.WaitingTicket:
    base = rules.WaitingTicket(
        ticket_id=ticket_id, language="en", category="payments", priority="normal", queued_at=T0
    )
    return replace(base, **overrides)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, None),
        ({"status": "suspended"}, "E1 not approved"),
        ({"status": "in_review"}, "E1 not approved"),
        ({"presence": "away"}, "E2 not online"),
        ({"presence": "offline"}, "E2 not online"),
        ({"languages": frozenset({"pt"})}, "E3 does not speak the language"),
        ({"skills": frozenset({"refunds"})}, "E4 lacks the skill"),
        ({"load": 2}, "E5 at capacity"),
        ({"has_pending_offer": True}, "E6 has a pending offer"),
    ],
)
def test_eligibility_names_the_first_rule_that_fails(overrides, reason):
    assert rules.why_not(ticket(), agent(**overrides), specialist_is_online=True) == reason


def test_an_agent_already_offered_the_ticket_is_not_offered_again():
    assert (
        rules.why_not(ticket(offered_to=frozenset({1})), agent(1), specialist_is_online=True)
        == "E7 already offered this ticket"
    )


def test_general_agents_serve_a_category_only_when_no_specialist_is_online():
    generalist = agent(2, skills=frozenset({"general"}))
    specialist = agent(3, skills=frozenset({"payments"}))
    assert rules.eligible(ticket(), [generalist]) == [generalist]
    assert rules.eligible(ticket(), [generalist, specialist]) == [specialist]
    busy_specialist = replace(specialist, load=2)
    # A busy specialist is still online: the ticket waits for a specialist.
    assert rules.eligible(ticket(), [generalist, busy_specialist]) == []
    away_specialist = replace(specialist, presence="away")
    assert rules.eligible(ticket(), [generalist, away_specialist]) == [generalist]


def test_a_specialist_who_cannot_speak_the_language_does_not_block_the_fallback():
    generalist = agent(2, skills=frozenset({"general"}), languages=frozenset({"pt"}))
    english_specialist = agent(3, skills=frozenset({"payments"}))
    assert rules.eligible(ticket(language="pt"), [generalist, english_specialist]) == [generalist]


EARLY = T0 - timedelta(minutes=30)


@pytest.mark.parametrize(
    ("first", "second", "rule"),
    [
        ({"booked_now": True, "load": 1}, {"booked_now": False}, "R1 booked in slot wins"),
        (
            {"skills": frozenset({"payments", "general"}), "load": 1},
            {"skills": frozenset({"general"})},
            "R2 exact skill beats general",
        ),
        ({"load": 0, "idle_since": T0}, {"load": 1, "idle_since": EARLY}, "R3 lower load"),
        ({"load": 1, "capacity": 4}, {"load": 1, "capacity": 2}, "R3 load is relative"),
        ({"idle_since": EARLY, "quality": Decimal(1)}, {"idle_since": T0}, "R4 longest idle"),
        ({"quality": Decimal("4.9")}, {"quality": Decimal("3.1")}, "R5 quality"),
        ({"quality": Decimal("0.1")}, {"quality": None}, "R5 unrated last"),
    ],
)
def test_agent_ranking_rules_in_order(first, second, rule):
    better, worse = agent(2, **first), agent(1, **second)
    general_allowed = ticket()
    if "general" in str(second):
        # Make the generalist eligible by taking the specialist out of the fallback test.
        ranked = sorted([worse, better], key=lambda c: rules.agent_order_key(general_allowed, c))
    else:
        ranked = rules.rank(general_allowed, [worse, better])
    assert [c.agent_id for c in ranked] == [2, 1], rule


def test_ties_are_broken_by_agent_id():
    ranked = rules.rank(ticket(), [agent(7), agent(3), agent(5)])
    assert [c.agent_id for c in ranked] == [3, 5, 7]


@pytest.mark.parametrize(
    ("tickets", "expected"),
    [
        (
            [ticket(1, priority="normal", queued_at=EARLY), ticket(2, priority="urgent")],
            [2, 1],
        ),
        ([ticket(1, priority="high"), ticket(2, priority="urgent")], [2, 1]),
        ([ticket(1, queued_at=T0), ticket(2, queued_at=EARLY)], [2, 1]),
        ([ticket(2), ticket(1)], [1, 2]),
    ],
)
def test_tickets_are_ordered_by_priority_then_waiting_time(tickets, expected):
    assert [t.ticket_id for t in rules.order_tickets(tickets)] == expected


def test_greedy_gives_each_ticket_its_best_remaining_agent():
    pairs = matching.match_greedy(
        [ticket(1), ticket(2, queued_at=T0 + timedelta(seconds=1))],
        [agent(1, idle_since=EARLY), agent(2)],
    )
    assert [(t.ticket_id, a.agent_id) for t, a in pairs] == [(1, 1), (2, 2)]


def test_batch_serves_more_tickets_than_greedy_when_specialists_are_scarce():
    # Agent 1 speaks en+pt and has both skills; agent 2 speaks en only.
    # Greedy gives the older en ticket to agent 1 (idle longer), stranding the pt one.
    tickets = [
        ticket(1, language="en", queued_at=EARLY),
        ticket(2, language="pt", queued_at=T0),
    ]
    agents = [
        agent(1, languages=frozenset({"en", "pt"}), idle_since=EARLY),
        agent(2, languages=frozenset({"en"})),
    ]
    greedy = matching.match_greedy(tickets, agents)
    batch = matching.match_batch(tickets, agents)
    assert [(t.ticket_id, a.agent_id) for t, a in greedy] == [(1, 1)]
    assert [(t.ticket_id, a.agent_id) for t, a in batch] == [(1, 2), (2, 1)]


def test_batch_never_skips_an_older_ticket_for_a_younger_one():
    tickets = [ticket(i, queued_at=T0 + timedelta(seconds=i)) for i in range(1, 6)]
    pairs = matching.match_batch(tickets, [agent(1), agent(2)])
    assert sorted(t.ticket_id for t, _ in pairs) == [1, 2]


def test_batch_prefers_better_ranked_agents_when_counts_tie():
    tickets = [ticket(1), ticket(2, queued_at=T0 + timedelta(seconds=1))]
    agents = [agent(1), agent(2, booked_now=True), agent(3, load=1)]
    pairs = matching.match_batch(tickets, agents)
    assert [(t.ticket_id, a.agent_id) for t, a in pairs] == [(1, 2), (2, 1)]


def test_batch_matches_nothing_when_nobody_is_eligible():
    assert (
        matching.match_batch([ticket(1), ticket(2)], [agent(1, presence="away"), agent(2, load=2)])
        == []
    )


@pytest.mark.parametrize(
    ("waiting", "free", "expected"),
    [
        (0, 0, "1.00"),
        (0, 10, "1.00"),
        (5, 10, "1.00"),
        (10, 10, "1.20"),
        (15, 10, "1.50"),
        (20, 10, "1.80"),
        (30, 10, "2.00"),
        (300, 10, "2.00"),
        (3, 0, "2.00"),
    ],
)
def test_surge_multiplier_by_band_with_a_cap(waiting, free, expected):
    assert pricing.surge_multiplier(waiting=waiting, free_capacity=free) == Decimal(expected)


def test_surge_cap_bounds_any_band():
    bands = pricing.parse_bands("1:1.5, 2:4.0")
    assert pricing.surge_multiplier(
        waiting=9, free_capacity=1, bands=bands, cap=Decimal("2.5")
    ) == Decimal("2.50")


def test_task_price_rounds_half_up_to_the_cent():
    assert pricing.task_price(base=Decimal("2.25"), multiplier=Decimal("1.50")) == Decimal("3.38")
