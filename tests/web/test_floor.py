"""The operations floor: its figures against PostgreSQL with known data, its page and its JSON."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import Presence
from marketplace import floor
from marketplace.models import Offer, OfferStatus
from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory
from tickets.models import Feedback, Rung, Ticket, TicketStatus

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def answered(agent, *, wait: float, assigned_secs_ago: float):
    """A ticket that waited ``wait`` seconds and was assigned ``assigned_secs_ago`` before NOW."""
    assigned_at = ago(assigned_secs_ago)
    return TicketFactory(
        status=TicketStatus.RESOLVED,
        assigned_agent=agent,
        queued_at=assigned_at - timedelta(seconds=wait),
        assigned_at=assigned_at,
        resolved_at=assigned_at + timedelta(minutes=2),
    )


def offer(ticket, agent, status, *, created_secs_ago: float):
    created = ago(created_secs_ago)
    return Offer.objects.create(
        ticket=ticket,
        agent=agent,
        status=status,
        base_amount=Decimal("2.00"),
        surge_multiplier=Decimal("1.00"),
        amount=Decimal("2.00"),
        currency="EUR",
        created_at=created,
        expires_at=created + timedelta(seconds=15),
    )


@pytest.fixture
def busy_hour(agent):
    """Given: an hour on the floor with known waits, agents, offers and feedback."""
    # Waits of the tickets answered in the last hour: 10, 20, 30, 40 and 100 seconds.
    tickets = [
        answered(agent, wait=w, assigned_secs_ago=a)
        for w, a in [(10, 3000), (20, 2400), (30, 1800), (40, 600), (100, 60)]
    ]
    answered(agent, wait=500, assigned_secs_ago=7200)  # two hours ago: outside the window
    TicketFactory(queued_at=ago(90), subject="Oldest in line")
    TicketFactory(queued_at=ago(30))

    AgentFactory(presence=Presence.ONLINE)
    busy = AgentFactory(presence=Presence.ONLINE, capacity=3)
    busy.active_tickets = 1
    busy.save(update_fields=["active_tickets"])
    AgentFactory(presence=Presence.AWAY)
    AgentFactory(presence=Presence.OFFLINE)

    for status in [OfferStatus.ACCEPTED] * 3 + [OfferStatus.DECLINED] + [OfferStatus.EXPIRED] * 2:
        offer(tickets[0], agent, status, created_secs_ago=600)
    offer(tickets[1], agent, OfferStatus.WITHDRAWN, created_secs_ago=600)
    offer(tickets[2], agent, OfferStatus.ACCEPTED, created_secs_ago=7200)

    def feedback(area, kind, text, secs_ago):
        Feedback.objects.create(
            ticket=tickets[0],
            agent=agent,
            area=area,
            kind=kind,
            text=text,
            created_at=ago(secs_ago),
        )

    feedback("card-payments", "bug", "Declined twice", 7000)
    feedback("card-payments", "bug", "Double charge", 3000)
    feedback("card-payments", "bug", "Charged twice at checkout", 100)
    feedback("app-login", "confusing", "Where is the reset link?", 200)
    feedback("card-payments", "bug", "Old news", 25 * 3600)
    return tickets


def test_waits_p50_and_p90_are_exact_over_the_last_hour(busy_hour):
    figures = floor.floor_now(now=NOW, target_seconds=60)

    assert figures.answered_last_hour == 5
    # percentile_cont: p50 is the middle wait; p90 = 40 + 0.6 * (100 - 40)
    assert figures.wait_p50_seconds == 30.0
    assert figures.wait_p90_seconds == 76.0


def test_the_python_percentile_matches_postgresql():
    waits = [100, 10, 40, 20, 30]

    assert floor.percentile(waits, 0.5) == 30
    assert floor.percentile(waits, 0.9) == 76
    assert floor.percentile([], 0.5) is None


def test_share_answered_within_target_counts_those_still_waiting_past_it(busy_hour):
    # Answered in the hour after 10, 20, 30, 40 and 100 s; waiting now for 90 and 30 s.
    assert floor.floor_now(now=NOW, target_seconds=60).within_target_share == round(4 / 6, 4)
    assert floor.floor_now(now=NOW, target_seconds=25).within_target_share == round(2 / 7, 4)
    assert floor.floor_now(now=NOW, target_seconds=100).within_target_share == 1.0


def test_each_priority_is_held_to_its_own_target_by_default(agent, settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "WAIT_TARGET_SECONDS": "urgent:30,high:60,normal:120",
    }
    answered(agent, wait=50, assigned_secs_ago=60)  # normal: within 120 s
    urgent = answered(agent, wait=50, assigned_secs_ago=60)  # urgent: past 30 s
    urgent.priority = "urgent"
    urgent.save(update_fields=["priority"])

    figures = floor.floor_now(now=NOW)

    assert figures.target_seconds is None
    assert figures.wait_targets == {"urgent": 30, "high": 60, "normal": 120}
    assert figures.within_target_share == 0.5


def test_nobody_answered_and_customers_waiting_past_target_is_no_100_percent(db):
    TicketFactory(queued_at=ago(600))

    figures = floor.floor_now(now=NOW)

    assert figures.answered_last_hour == 0
    assert figures.within_target_share == 0.0
    assert figures.past_target_count == 1


def test_waiting_tickets_and_the_longest_wait(busy_hour):
    figures = floor.floor_now(now=NOW)

    assert figures.waiting == 2
    assert figures.longest_wait_seconds == 90
    assert figures.longest_waiting[0].subject == "Oldest in line"


def test_agents_online_busy_and_away(busy_hour):
    figures = floor.floor_now(now=NOW)

    # the ``agent`` persona is offline; one online agent idle, one online with a ticket
    assert (figures.agents_online, figures.agents_busy, figures.agents_away) == (2, 1, 1)
    assert figures.free_seats == 2 + 2


def test_offer_acceptance_counts_answered_and_expired_offers_of_the_last_hour(busy_hour):
    figures = floor.floor_now(now=NOW)

    # 3 accepted, 1 declined, 2 expired; withdrawn and older offers do not count
    assert (figures.offers_accepted_last_hour, figures.offers_decided_last_hour) == (3, 6)
    assert figures.offer_acceptance_rate == 0.5


def test_feedback_themes_group_the_last_day_by_area_and_kind(busy_hour):
    themes = floor.floor_now(now=NOW).feedback_themes

    assert [(t.area, t.kind, t.count) for t in themes] == [
        ("card-payments", "bug", 3),
        ("app-login", "confusing", 1),
    ]
    assert themes[0].latest_text == "Charged twice at checkout"


def test_answered_per_five_minutes(busy_hour):
    buckets = floor.floor_now(now=NOW, target_seconds=60).buckets

    assert len(buckets) == 12
    assert sum(b.answered for b in buckets) == 5
    assert sum(b.within_target for b in buckets) == 4
    # the 100-second wait, assigned a minute ago, is the last bar's one late ticket
    assert (buckets[-1].answered, buckets[-1].within_target) == (1, 0)


def test_an_empty_floor_has_no_percentiles():
    figures = floor.floor_now(now=NOW)

    assert figures.waiting == 0
    assert figures.wait_p50_seconds is None and figures.within_target_share is None
    assert figures.offer_acceptance_rate is None
    assert figures.surge_multiplier == "1.00"


# --- the page and the JSON ------------------------------------------------------------


def test_staff_read_the_floor_json(api, staff):
    TicketFactory()

    response = api.as_(staff).get("/api/v1/admin/floor/?target=30")

    assert response.status_code == 200
    body = response.json()
    assert body["waiting"] == 1 and body["target_seconds"] == 30
    assert {"wait_p50_seconds", "buckets", "feedback_themes", "surge_multiplier"} <= set(body)


@pytest.mark.parametrize("persona", ["customer", "agent"])
def test_the_floor_json_is_for_staff_only(api, request, persona):
    assert api.as_(request.getfixturevalue(persona)).get("/api/v1/admin/floor/").status_code == 403
    assert api.as_(None).get("/api/v1/admin/floor/").status_code in (401, 403)


def test_staff_see_the_floor_page_with_the_waiting_ticket(client, staff):
    TicketFactory(subject="Card blocked abroad")
    client.force_login(staff)

    page = client.get("/ops/").content.decode()

    assert "Operations floor" in page and "Card blocked abroad" in page
    assert 'href="/staff/review/"' in page and 'href="/staff/shifts/"' in page


@pytest.mark.parametrize("persona", ["customer", "agent"])
def test_the_floor_page_sends_others_home_with_a_reason(client, request, persona):
    person = request.getfixturevalue(persona)
    client.force_login(getattr(person, "user", person))

    response = client.get("/ops/", follow=True)

    assert response.redirect_chain[0][0] == "/"
    assert "The operations floor is for operations staff." in response.content.decode()


def test_staff_land_on_the_floor(client, staff):
    client.force_login(staff)

    assert client.get("/")["Location"] == "/ops/"


# --- the page: customers past their target, and why -----------------------------------


@pytest.fixture
def targets(settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "WAIT_TARGET_SECONDS": "normal:120,high:60,urgent:30",  # not in the order shown
    }


@pytest.fixture
def english_agent_online(db):
    """Someone is online, so that a Maltese ticket waits for want of Maltese."""
    return AgentFactory(presence=Presence.ONLINE, languages=["en"], skills=["general"])


def text(html: str) -> str:
    """What a reader sees: tags dropped, whitespace collapsed."""
    cells_apart = re.sub(r"</?(td|th|tr|p|h2|div)\b[^>]*>", " ", html)
    return " ".join(re.sub(r"<[^>]+>", "", cells_apart).split())


def part(page: str, start: str, end: str) -> str:
    return page.split(start, 1)[1].split(end, 1)[0]


def floor_page(client, staff, query: str = "") -> str:
    client.force_login(staff)
    return client.get("/ops/" + query).content.decode()


def waited(seconds: float, **fields):
    return TicketFactory(queued_at=timezone.now() - timedelta(seconds=seconds), **fields)


def test_staff_see_each_customer_past_target_with_why_nobody_takes_them(
    client, staff, clock, targets, english_agent_online
):
    maltese = waited(250, language="mt", subject="Karta imblukkata")
    Ticket.objects.filter(pk=maltese.pk).update(escalation=Rung.STAFF_ALERT)
    waited(10, subject="Just joined")

    page = floor_page(client, staff)

    rows = part(page, 'id="past-target-rows">', "</tbody>")
    assert text(rows) == (
        f"#{maltese.pk} Karta imblukkata general · mt normal 4 min 10 s · target 2 min"
        " Staff alerted No agent online speaks Maltese (mt)."
    )
    assert f'href="/help/tickets/{maltese.pk}/"' in rows
    assert 'class="card past-target attention"' in page
    assert text(part(page, 'id="past-target-title">', "</h2>")) == "Past target 1"
    assert 'id="past-target-more" hidden' in page


def test_the_title_counts_the_customers_past_target(client, staff, clock, targets):
    waited(200)
    waited(45, priority="urgent")
    waited(45, priority="high")  # within its 60 s

    page = floor_page(client, staff)

    assert "<title>(2) Operations floor · Humanline</title>" in page


def test_more_past_target_than_shown_says_how_many_more(client, staff, clock, targets, monkeypatch):
    monkeypatch.setattr(floor, "PAST_TARGET_SHOWN", 2)
    for seconds in (500, 400, 300):
        waited(seconds)

    page = floor_page(client, staff)

    assert part(page, 'id="past-target-rows">', "</tbody>").count("<tr ") == 2
    more = part(page, '<p class="muted small more" id="past-target-more"', "</p>")
    assert "hidden" not in more.split(">", 1)[0]
    assert text(more.split(">", 1)[1]) == "+ 1 more waiting past their target."


def test_a_floor_with_nobody_past_target_says_so_and_raises_no_alert(client, staff, clock, targets):
    waited(100)  # a normal ticket, within its 120 s

    page = floor_page(client, staff)

    assert text(part(page, 'id="past-target-rows">', "</tbody>")) == (
        "No customer is waiting past their target."
    )
    assert "<title>Operations floor · Humanline</title>" in page
    assert 'class="card past-target"' in page


def test_the_page_states_each_priority_s_wait_target_the_most_urgent_first(client, staff, targets):
    page = floor_page(client, staff)

    assert text(part(page, 'data-testid="wait-targets">', "</p>")) == (
        "The last hour, live. Wait targets: urgent 30 s · high 1 min · normal 2 min."
    )


def test_one_target_asked_for_is_stated_beside_the_escalation_targets(client, staff, targets):
    page = floor_page(client, staff, "?target=45")

    assert text(part(page, 'data-testid="wait-targets">', "</p>")) == (
        "The last hour, live. Answered within 45 s for every priority, as asked;"
        " escalation keeps each priority's own target: urgent 30 s · high 1 min · normal 2 min."
    )


def test_the_page_counts_declines_that_said_not_my_area(client, staff, agent, clock):
    ticket = TicketFactory()
    said_so = offer(ticket, agent, OfferStatus.DECLINED, created_secs_ago=600)
    Offer.objects.filter(pk=said_so.pk).update(decline_reason="not_my_area")
    offer(ticket, agent, OfferStatus.DECLINED, created_secs_ago=300)  # busy, or no reason

    page = floor_page(client, staff)

    assert text(part(page, 'data-testid="declined-not-my-area">', "</p>")) == (
        "1 declined as not their area"
    )


def test_the_floor_json_keeps_its_shape(api, staff, targets, english_agent_online):
    waited(300, language="mt")

    body = api.as_(staff).get("/api/v1/admin/floor/").json()

    assert set(body) == {
        "now",
        "target_seconds",
        "wait_targets",
        "waiting",
        "longest_wait_seconds",
        "answered_last_hour",
        "wait_p50_seconds",
        "wait_p90_seconds",
        "within_target_share",
        "agents_online",
        "agents_busy",
        "agents_away",
        "free_seats",
        "offers_decided_last_hour",
        "offers_accepted_last_hour",
        "offer_acceptance_rate",
        "declined_not_my_area_last_hour",
        "surge_multiplier",
        "past_target_count",
        "staffing_required_now",
        "staffing_expected_next_hour",
        "predicted_service_level_next_hour",
        "staffing_answer_seconds",
        "staffing_service_level_goal",
        "past_target",
        "longest_waiting",
        "buckets",
        "feedback_themes",
    }
    assert set(body["past_target"][0]) == {
        "id",
        "subject",
        "language",
        "category",
        "priority",
        "status",
        "waiting_seconds",
        "target_seconds",
        "rung",
        "reason_code",
        "reason",
    }
    assert body["past_target"][0]["reason"] == "No agent online speaks Maltese (mt)."
