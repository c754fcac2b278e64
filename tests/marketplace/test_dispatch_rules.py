"""The dispatch rules, table by table: eligibility, ranking, ticket order, why nobody,
batch matching, surge.  The rules are database expressions, so each table runs on a
small market in the database."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.utils import timezone

from agents.models import Agent, AgentStatus, Presence
from marketplace import pricing
from marketplace.dispatch import matching, rules
from marketplace.models import Offer, OfferStatus
from tests.factories import AgentFactory
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory
from tests.tickets.factories import TicketFactory
from tickets.models import Ticket, TicketStatus, queue_order

NOW = timezone.now()
EARLY = NOW - timedelta(minutes=30)


def online(**fields) -> Agent:
    """An approved agent, online since a minute ago: English and payments unless told."""
    languages = fields.pop("languages", ["en"])
    skills = fields.pop("skills", ["payments"])
    agent = AgentFactory(languages=languages, skills=skills, **fields)
    Agent.objects.filter(pk=agent.pk).update(
        presence=Presence.ONLINE, presence_changed_at=NOW - timedelta(minutes=1)
    )
    return agent


def offer_row(ticket, agent, status=OfferStatus.PENDING) -> Offer:
    return Offer.objects.create(
        ticket=ticket,
        agent=agent,
        status=status,
        base_amount=1,
        surge_multiplier=1,
        amount=1,
        currency="EUR",
        created_at=NOW - timedelta(seconds=20),
        expires_at=NOW - timedelta(seconds=5),
        answered_at=None if status == OfferStatus.PENDING else NOW - timedelta(seconds=10),
    )


def eligible_ids(ticket) -> list[int]:
    return rules.agents_for(rules.Target.of(ticket), NOW)


# --- eligibility ----------------------------------------------------------------------


def _suspended(agent):
    Agent.objects.filter(pk=agent.pk).update(status=AgentStatus.SUSPENDED)


def _in_review(agent):
    Agent.objects.filter(pk=agent.pk).update(status=AgentStatus.IN_REVIEW)


def _away(agent):
    Agent.objects.filter(pk=agent.pk).update(presence=Presence.AWAY)


def _offline(agent):
    Agent.objects.filter(pk=agent.pk).update(presence=Presence.OFFLINE)


def _portuguese_only(agent):
    agent.languages.update(code="pt")


def _refunds_only(agent):
    agent.skills.set(agent.skills.model.objects.filter(slug="refunds"))


def _full(agent):
    Agent.objects.filter(pk=agent.pk).update(active_tickets=F("capacity"))


def _answering_another_offer(agent):
    offer_row(TicketFactory(status=TicketStatus.OFFERED), agent)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (None, None),
        (_suspended, "E1"),
        (_in_review, "E1"),
        (_away, "E2"),
        (_offline, "E2"),
        (_portuguese_only, "E3"),
        (_refunds_only, "E4"),
        (_full, "E5"),
        (_answering_another_offer, "E6"),
    ],
)
@pytest.mark.django_db
def test_eligibility_names_the_first_rule_that_leaves_nobody(change, rule):
    agent = online()
    ticket = TicketFactory(category="payments")
    if change:
        change(agent)

    assert eligible_ids(ticket) == ([agent.pk] if rule is None else [])
    assert rules.explain(rules.Target.of(ticket), NOW).rule == rule


@pytest.mark.parametrize("status", [OfferStatus.DECLINED, OfferStatus.EXPIRED])
@pytest.mark.django_db
def test_an_agent_who_passed_on_the_ticket_is_not_offered_it(status):
    agent = online()
    ticket = TicketFactory(category="payments")
    offer_row(ticket, agent, status)

    assert eligible_ids(ticket) == []
    assert rules.explain(rules.Target.of(ticket), NOW).rule == "E7"
    # Another ticket of the same lane is still theirs to take.
    assert eligible_ids(TicketFactory(category="payments")) == [agent.pk]


@pytest.mark.parametrize(("reason", "lasts"), [("not_my_area", True), ("busy", False), ("", False)])
@pytest.mark.django_db
def test_a_decline_as_not_my_area_keeps_the_agent_off_the_ticket_for_good(reason, lasts):
    agent = online()
    ticket = TicketFactory(category="payments")
    offer = offer_row(ticket, agent, OfferStatus.DECLINED)
    Offer.objects.filter(pk=offer.pk).update(decline_reason=reason)

    next_day = NOW + timedelta(days=1)
    ids = rules.agents_for(rules.Target.of(ticket), next_day)
    assert ids == ([] if lasts else [agent.pk])


@pytest.mark.django_db
def test_an_offer_the_platform_withdrew_does_not_count_against_the_agent():
    agent = online()
    ticket = TicketFactory(category="payments")
    offer_row(ticket, agent, OfferStatus.WITHDRAWN)

    assert eligible_ids(ticket) == [agent.pk]


@pytest.mark.django_db
def test_the_pass_on_a_ticket_lasts_the_cooldown(settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "REOFFER_COOLDOWN_SECONDS": 60}
    agent = online()
    ticket = TicketFactory(category="payments")
    offer = offer_row(ticket, agent, OfferStatus.DECLINED)
    target = rules.Target.of(ticket)

    for seconds, eligible in [(59, False), (60, True), (3600, True)]:
        later = offer.answered_at + timedelta(seconds=seconds)
        ids = rules.agents_for(target, later)
        assert ids == ([agent.pk] if eligible else []), seconds

    settings.HUMANLINE = {**settings.HUMANLINE, "REOFFER_COOLDOWN_SECONDS": 600}
    later = offer.answered_at + timedelta(seconds=300)
    assert rules.agents_for(target, later) == []


@pytest.mark.django_db
def test_general_agents_serve_a_category_only_when_no_specialist_is_online():
    generalist = online(skills=["general"])
    ticket = TicketFactory(category="payments")
    assert eligible_ids(ticket) == [generalist.pk]

    specialist = online(skills=["payments"])
    assert eligible_ids(ticket) == [specialist.pk]

    # A busy specialist is still online: the ticket waits for a specialist.
    _full(specialist)
    assert eligible_ids(ticket) == []
    assert rules.explain(rules.Target.of(ticket), NOW).rule == "E5"

    _away(specialist)
    assert eligible_ids(ticket) == [generalist.pk]


@pytest.mark.django_db
def test_a_specialist_who_cannot_speak_the_language_does_not_block_the_fallback():
    generalist = online(skills=["general"], languages=["pt"])
    online(skills=["payments"], languages=["en"])
    ticket = TicketFactory(category="payments", language="pt")
    assert eligible_ids(ticket) == [generalist.pk]


@pytest.mark.django_db
def test_explain_counts_the_agents_who_pass_each_rule_and_those_before_it():
    online()  # eligible
    online(languages=["pt"])  # fails E3
    _away(online())  # fails E2
    _full(online())  # fails E5
    ticket = TicketFactory(category="payments")

    why = rules.explain(rules.Target.of(ticket), NOW)

    assert why.rule is None
    assert why.counts == {"E1": 4, "E2": 3, "E3": 2, "E4": 2, "E5": 1, "E6": 1, "E7": 1}


# --- ranking --------------------------------------------------------------------------


def _booked_now(agent):
    slot = ShiftSlotFactory(
        starts_at=NOW - timedelta(minutes=10), ends_at=NOW + timedelta(minutes=20)
    )
    ShiftBookingFactory(slot=slot, agent=agent)


@pytest.mark.parametrize(
    ("better", "worse", "rule"),
    [
        (
            {"setup": _booked_now, "active_tickets": 1},
            {},
            "R1 booked into a slot covering now wins over load",
        ),
        ({"idle_since": NOW}, {"active_tickets": 1, "idle_since": EARLY}, "R3 lower load"),
        (
            {"active_tickets": 1, "capacity": 4},
            {"active_tickets": 1, "capacity": 2},
            "R3 load is relative to capacity",
        ),
        ({"idle_since": EARLY, "quality_score": 10}, {"idle_since": NOW}, "R4 longest idle"),
        ({"quality_score": 90}, {"quality_score": 60}, "R5 quality"),
    ],
)
@pytest.mark.django_db
def test_agent_ranking_rules_in_order(better, worse, rule):
    def make(spec):
        spec = dict(spec)
        setup = spec.pop("setup", None)
        agent = online(**{"idle_since": NOW - timedelta(minutes=5), **spec})
        if callable(setup):
            setup(agent)
        return agent

    # The worse agent gets the lower id, so that R6 alone would rank it first.
    second, first = make(worse), make(better)
    ticket = TicketFactory(category="payments")

    assert eligible_ids(ticket) == [first.pk, second.pk], rule


@pytest.mark.django_db
def test_ties_are_broken_by_agent_id():
    agents = [online(idle_since=EARLY) for _ in range(3)]
    ticket = TicketFactory(category="payments")
    assert eligible_ids(ticket) == sorted(a.pk for a in agents)


# --- ticket order ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"priority": "urgent"}, {"priority": "normal", "queued_at": EARLY}),
        ({"priority": "urgent"}, {"priority": "high", "queued_at": EARLY}),
        ({"priority": "high"}, {"priority": "normal", "queued_at": EARLY}),
        ({"queued_at": EARLY}, {"queued_at": NOW}),
    ],
)
@pytest.mark.django_db
def test_tickets_are_served_by_priority_then_time_in_line(first, second):
    later = TicketFactory(**second)
    earlier = TicketFactory(**first)
    order = list(Ticket.objects.order_by(*queue_order()).values_list("pk", flat=True))
    assert order == [earlier.pk, later.pk]


@pytest.mark.django_db
def test_an_agent_is_given_tickets_in_queue_order():
    agent = online(skills=["payments", "general"])
    normal = TicketFactory(category="payments", queued_at=EARLY)
    urgent = TicketFactory(category="general", priority="urgent")
    TicketFactory(category="payments", language="pt")  # not theirs: E3

    ids = rules.tickets_for(agent.pk, NOW)

    assert ids == [urgent.pk, normal.pk]


# --- matching -------------------------------------------------------------------------


def test_greedy_gives_each_ticket_its_best_remaining_agent():
    assert matching.match_greedy([1, 2], {1: [10, 20], 2: [10, 20]}) == [(1, 10), (2, 20)]


def test_batch_serves_more_tickets_than_greedy_when_specialists_are_scarce():
    # Agent 10 speaks en+pt, agent 20 en only; greedy gives the older en ticket to
    # 10 (ranked first for it), stranding the pt ticket that only 10 can serve.
    ranked = {1: [10, 20], 2: [10]}
    assert matching.match_greedy([1, 2], ranked) == [(1, 10)]
    assert matching.match_batch([1, 2], ranked) == [(1, 20), (2, 10)]


def test_batch_never_skips_an_older_ticket_for_a_younger_one():
    ranked = {ticket: [10, 20] for ticket in range(1, 6)}
    assert sorted(t for t, _ in matching.match_batch(list(range(1, 6)), ranked)) == [1, 2]


def test_batch_prefers_better_ranked_agents_when_counts_tie():
    assert matching.match_batch([1, 2], {1: [20, 10, 30], 2: [20, 10, 30]}) == [(1, 20), (2, 10)]


def test_batch_matches_nothing_when_nobody_is_eligible():
    assert matching.match_batch([1, 2], {1: [], 2: []}) == []


# --- surge ----------------------------------------------------------------------------


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
