"""/metrics: who may read it, and the domain's figures moving with what happens."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch
from operations import metrics
from operations.tally import SETTLE_SECONDS
from tests.factories import AgentFactory
from tests.marketplace.test_dispatch import go_online, offer_for
from tests.tickets.factories import TicketFactory
from tickets import services as ticket_services

pytestmark = pytest.mark.django_db

OUTSIDER = "203.0.113.9"


def scrape(client, **extra) -> dict[tuple, float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- who may read them --------------------------------------------------------------


def test_metrics_are_served_to_the_loopback_by_default(client):
    assert "humanline_queue_depth" in client.get("/metrics").content.decode()


def test_an_outsider_without_the_token_is_refused(client):
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDER)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert b"humanline_" not in response.content


def test_the_bearer_token_opens_them_from_anywhere_and_a_wrong_one_does_not(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"

    good = client.get(
        "/metrics", REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token"
    )
    wrong = client.get("/metrics", REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION="Bearer guess")
    wrong_here = client.get("/metrics", HTTP_AUTHORIZATION="Bearer guess")

    assert good.status_code == 200
    assert wrong.status_code == 403
    assert wrong_here.status_code == 403  # a wrong token is refused even from the loopback


def test_an_allowed_network_is_read_as_a_cidr(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]

    assert client.get("/metrics", REMOTE_ADDR=OUTSIDER).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="198.51.100.1").status_code == 403
    assert client.get("/metrics").status_code == 403  # the loopback is no longer listed


def test_forwarded_for_counts_only_behind_the_configured_proxies(client, settings):
    forged = {"HTTP_X_FORWARDED_FOR": "127.0.0.1", "REMOTE_ADDR": OUTSIDER}
    behind_proxy = {"HTTP_X_FORWARDED_FOR": OUTSIDER, "REMOTE_ADDR": "127.0.0.1"}

    # No proxy configured: the header is ignored, the peer's address counts.
    assert client.get("/metrics", **forged).status_code == 403
    assert client.get("/metrics", **behind_proxy).status_code == 200

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # One proxy: the address it saw is the client's.
    assert client.get("/metrics", **behind_proxy).status_code == 403


def test_only_get_is_answered(client):
    assert client.post("/metrics").status_code == 405


def test_the_operations_endpoints_are_not_in_the_api_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = set(schema["paths"])
    assert not paths & {"/metrics", "/healthz", "/readyz"}


# --- what they show -----------------------------------------------------------------


@pytest.fixture
def floor(db):
    """Paula (payments, general) and Gil (general), both online and free."""
    paula = AgentFactory(user__name="Paula Pay", languages=["en"], skills=["payments", "general"])
    gil = AgentFactory(user__name="Gil General", languages=["en"], skills=["general"])
    go_online(paula, gil)
    return paula, gil


def test_the_figures_move_with_tickets_offers_and_agents(client, floor):
    paula, gil = floor
    before = scrape(client)

    # Given a payments ticket opened 40 s ago, one for general help, and one in Maltese
    now = timezone.now()
    payments = TicketFactory(
        category="payments", created_at=now - timedelta(seconds=40), queued_at=now
    )
    general = TicketFactory(category="general")
    TicketFactory(category="general", language="mt")
    queued = scrape(client)

    # When both English tickets are offered, Paula takes hers and Gil passes on his
    dispatch.dispatch_pass()
    dispatch.offer_accept(offer_id=offer_for(payments).pk, user=paula.user)
    dispatch.offer_decline(offer_id=offer_for(general).pk, user=gil.user, reason="busy")
    after = scrape(client)

    # Then the queue had each lane's tickets
    assert (
        value(queued, "humanline_queue_depth", language="en", category="payments", wide="false")
        == 1
    )
    assert (
        value(queued, "humanline_queue_depth", language="mt", category="general", wide="false") == 1
    )
    assert (
        value(after, "humanline_queue_depth", language="en", category="payments", wide="false") == 0
    )
    assert (
        value(after, "humanline_queue_depth", language="mt", category="general", wide="false") == 1
    )
    # the offers were counted by how they ended
    made = Offer.objects.count()
    assert made >= 2
    assert (
        value(after, "humanline_offers_made_total") - value(before, "humanline_offers_made_total")
        == made
    )
    for outcome, expected in (("accepted", 1), ("declined", 1), ("expired", 0)):
        delta = value(after, "humanline_offers_ended_total", outcome=outcome) - value(
            before, "humanline_offers_ended_total", outcome=outcome
        )
        assert delta == expected, outcome
    assert (
        value(after, "humanline_offers_pending")
        == Offer.objects.filter(status=OfferStatus.PENDING).count()
    )
    # the payments ticket reached a human 40 s after it was opened
    count = "humanline_time_to_human_seconds_count"
    assert value(after, count) - value(before, count) == 1
    assert value(after, "humanline_time_to_human_seconds_bucket", le="30.0") == value(
        before, "humanline_time_to_human_seconds_bucket", le="30.0"
    )
    assert (
        value(after, "humanline_time_to_human_seconds_bucket", le="45.0")
        - value(before, "humanline_time_to_human_seconds_bucket", le="45.0")
        == 1
    )
    assert 40 <= value(after, "humanline_time_to_human_seconds_sum") < 45
    # and both agents are online, Paula busy with her ticket
    assert value(before, "humanline_agents_online") == 2
    assert value(before, "humanline_agents_busy") == 0
    assert value(after, "humanline_agents_busy") == 1
    # the Maltese customer waits while seats are free: no surge
    assert value(after, "humanline_surge_multiplier") == 1.0
    assert value(after, "humanline_surge_waiting_customers") >= 1


def test_surge_shows_when_customers_wait_for_few_free_seats(client, db):
    lone = AgentFactory(user__name="Lone Agent", languages=["en"], skills=["general"], capacity=1)
    go_online(lone)
    for _ in range(4):
        TicketFactory(category="general", language="mt")

    samples = scrape(client)

    assert value(samples, "humanline_free_seats") == 1
    assert value(samples, "humanline_surge_waiting_customers") == 4
    assert value(samples, "humanline_surge_multiplier") == 2.0  # 4 per seat: the top band


def test_a_reassigned_ticket_counts_once_from_its_opening(client, floor):
    paula, _ = floor
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    dispatch.offer_accept(offer_id=offer_for(ticket).pk, user=paula.user)
    first = scrape(client)

    # The agent loses the ticket; someone takes it again
    dispatch.assignments_return_for_agent(agent_id=paula.pk, reason="gone")
    dispatch.dispatch_pass()
    pending = Offer.objects.get(ticket=ticket, status=OfferStatus.PENDING)
    dispatch.offer_accept(offer_id=pending.pk, user=pending.agent.user)
    second = scrape(client)

    count = "humanline_time_to_human_seconds_count"
    assert value(second, count) == value(first, count)


def test_counters_read_the_same_after_rows_settle_as_a_full_count(client, floor):
    """The per-process totals of settled rows never change what a scrape says."""
    paula, _ = floor
    for _ in range(3):
        ticket = TicketFactory(category="payments")
        dispatch.dispatch_pass()
        dispatch.offer_accept(offer_id=offer_for(ticket).pk, user=paula.user)
        ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=paula.user)
    TicketFactory(category="payments")
    dispatch.dispatch_pass()  # one offer left pending: it holds back settling
    fresh = scrape(client)

    with time_machine.travel(timezone.now() + timedelta(seconds=SETTLE_SECONDS + 5)):
        settled = scrape(client)
        later = scrape(client)
        dispatch.offers_expire_overdue()  # the pending one expires: still counted once
        expired = scrape(client)

    made = Offer.objects.count()
    for samples in (fresh, settled, later, expired):
        assert value(samples, "humanline_offers_made_total") == made
    assert value(settled, "humanline_offers_pending") == 1
    assert value(expired, "humanline_offers_pending") == 0
    assert (
        value(expired, "humanline_offers_ended_total", outcome="expired")
        == value(settled, "humanline_offers_ended_total", outcome="expired") + 1
    )
    assert value(expired, "humanline_offers_ended_total", outcome="accepted") == 3


def test_a_process_settles_rows_older_than_a_minute_on_its_first_scrape(client, floor):
    paula, _ = floor
    with time_machine.travel(timezone.now() - timedelta(minutes=5)):
        ticket = TicketFactory(category="payments")
        dispatch.dispatch_pass()
        dispatch.offer_accept(offer_id=offer_for(ticket).pk, user=paula.user)
    TicketFactory(category="payments")
    dispatch.dispatch_pass()  # a fresh offer, pending

    samples = scrape(client)

    old, _pending = Offer.objects.order_by("id")
    assert metrics.offers_tally.settled_to == old.pk  # read once, never again
    assert value(samples, "humanline_offers_made_total") == 2
    assert value(samples, "humanline_offers_ended_total", outcome="accepted") == 1
    assert value(samples, "humanline_offers_pending") == 1
    assert metrics.time_to_human_tally.settled_to > 0
    assert value(samples, "humanline_time_to_human_seconds_count") == 1
