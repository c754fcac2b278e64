"""Ratings once after resolution, the agent's quality score, product feedback."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.tickets.factories import TicketFactory, assigned, resolved
from tickets import selectors, services
from tickets.models import Feedback, Rating

pytestmark = pytest.mark.django_db


# --- rating -------------------------------------------------------------------


def test_the_customer_rates_a_resolved_ticket_once(api, customer, agent):
    ticket = resolved(TicketFactory(customer=customer), agent)
    client = api.as_(customer)

    first = client.post(f"/api/v1/tickets/{ticket.pk}/rating/", {"score": 5, "comment": "Great"})
    second = client.post(f"/api/v1/tickets/{ticket.pk}/rating/", {"score": 1})

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "already_rated"
    rating = Rating.objects.get()
    assert (rating.score, rating.comment, rating.agent) == (5, "Great", agent)
    assert client.get(f"/api/v1/tickets/{ticket.pk}/").json()["rating"]["score"] == 5


def test_an_unresolved_ticket_cannot_be_rated(api, customer, agent):
    ticket = assigned(TicketFactory(customer=customer), agent)

    response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/rating/", {"score": 4})

    assert response.status_code == 409
    assert not Rating.objects.exists()


@pytest.mark.parametrize("score", [0, 6, "five"])
def test_scores_outside_1_to_5_are_a_400(api, customer, agent, score):
    ticket = resolved(TicketFactory(customer=customer), agent)

    response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/rating/", {"score": score})

    assert response.status_code == 400
    assert "score" in response.json()["error"]["fields"]


def test_the_agent_cannot_rate_their_own_ticket(api, agent):
    ticket = resolved(TicketFactory(), agent)

    response = api.as_(agent).post(f"/api/v1/tickets/{ticket.pk}/rating/", {"score": 5})

    assert response.status_code == 403


# --- quality ------------------------------------------------------------------


def _resolve_and_rate(agent, score: int):
    ticket = resolved(TicketFactory(), agent)
    services.rating_submit(ticket_id=ticket.pk, caller=ticket.customer, score=score)
    return ticket


def test_a_new_agent_starts_at_the_prior(agent):
    quality = selectors.agent_quality(agent=agent)

    assert quality.score == 75  # (4.0 - 1) / 4
    assert quality.ratings_count == 0 and quality.average_rating is None


def test_quality_blends_recent_ratings_with_the_prior(agent):
    for _ in range(5):
        _resolve_and_rate(agent, 5)

    quality = selectors.agent_quality(agent=agent)

    # (5 * 5 + 5 * 4.0) / 10 = 4.5 -> (4.5 - 1) / 4 = 87.5%
    assert quality.average_rating == 5.0
    assert quality.score == 88


def test_reopened_tickets_lower_the_quality(agent):
    tickets = [_resolve_and_rate(agent, 5) for _ in range(5)]
    services.ticket_reopen(ticket_id=tickets[0].pk, caller=tickets[0].customer)

    quality = selectors.agent_quality(agent=agent)

    assert quality.reopened_count == 1 and quality.resolved_count == 5
    assert quality.reopen_rate == 0.2
    assert quality.score == round(87.5 * 0.8)


def test_old_ratings_leave_the_window(agent):
    with time_machine.travel(timezone.now() - timedelta(days=120)):
        for _ in range(5):
            _resolve_and_rate(agent, 1)

    assert selectors.agent_quality(agent=agent).ratings_count == 0


def test_the_agent_sees_their_quality_and_staff_see_everyones(api, agent, staff, customer):
    _resolve_and_rate(agent, 5)

    mine = api.as_(agent).get("/api/v1/agents/me/quality/")
    theirs = api.as_(staff).get(f"/api/v1/admin/agents/{agent.pk}/quality/")

    assert mine.status_code == theirs.status_code == 200
    assert mine.json() == theirs.json()
    assert mine.json()["ratings_count"] == 1
    assert api.as_(customer).get("/api/v1/agents/me/quality/").status_code == 403
    assert api.as_(agent).get(f"/api/v1/admin/agents/{agent.pk}/quality/").status_code == 403
    assert api.as_(staff).get("/api/v1/admin/agents/999999/quality/").status_code == 404


# --- feedback -----------------------------------------------------------------


def test_the_agent_tags_a_ticket_with_product_feedback(api, agent):
    ticket = assigned(TicketFactory(), agent)

    response = api.as_(agent).post(
        f"/api/v1/tickets/{ticket.pk}/feedback/",
        {"area": "Card payments", "kind": "bug", "text": "Double charge on retry."},
    )

    assert response.status_code == 201, response.json()
    feedback = Feedback.objects.get()
    assert (feedback.area, feedback.kind, feedback.agent) == ("card-payments", "bug", agent)


def test_feedback_needs_a_known_kind(api, agent):
    ticket = assigned(TicketFactory(), agent)

    response = api.as_(agent).post(
        f"/api/v1/tickets/{ticket.pk}/feedback/", {"area": "x", "kind": "rant", "text": "t"}
    )

    assert response.status_code == 400


def test_only_the_tickets_agent_tags_it(api, agent, other_agent, customer):
    ticket = assigned(TicketFactory(customer=customer), agent)
    body = {"area": "app", "kind": "confusing", "text": "t"}

    assert (
        api.as_(other_agent).post(f"/api/v1/tickets/{ticket.pk}/feedback/", body).status_code == 404
    )
    assert api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/feedback/", body).status_code == 403


def test_staff_list_and_filter_feedback(api, agent, staff):
    ticket = assigned(TicketFactory(), agent)
    with time_machine.travel(timezone.now() - timedelta(days=3)):
        services.feedback_tag(
            ticket_id=ticket.pk, caller=agent.user, area="cards", kind="bug", text="old"
        )
    services.feedback_tag(
        ticket_id=ticket.pk, caller=agent.user, area="cards", kind="bug", text="new"
    )
    services.feedback_tag(
        ticket_id=ticket.pk, caller=agent.user, area="app", kind="feature_request", text="dark mode"
    )
    client = api.as_(staff)

    def texts(query: str) -> list[str]:
        response = client.get(f"/api/v1/admin/feedback/{query}")
        assert response.status_code == 200
        return [row["text"] for row in response.json()["results"]]

    assert texts("") == ["dark mode", "new", "old"]
    assert texts("?kind=bug") == ["new", "old"]
    assert texts("?area=app") == ["dark mode"]
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert texts(f"?kind=bug&since={since}") == ["new"]
    assert client.get("/api/v1/admin/feedback/?kind=rant").status_code == 400
    assert api.as_(agent).get("/api/v1/admin/feedback/").status_code == 403


def test_resolves_refresh_the_score_once_per_window_ratings_at_once(
    agent, customer, django_capture_on_commit_callbacks
):
    """On workers (not eager), a burst of resolves stores the agent's score once,
    after the window, counting them all; a rating stores it at once."""
    from celery.signals import before_task_publish

    from config.celery import app

    published = []

    def seen(sender=None, headers=None, **kwargs):
        published.append((sender, headers.get("eta") is not None))

    before_task_publish.connect(seen, weak=False)
    eager, app.conf.task_always_eager = app.conf.task_always_eager, False
    try:
        tickets = [TicketFactory(customer=customer) for _ in range(3)]
        for ticket in tickets:
            assigned(ticket, agent)
            with django_capture_on_commit_callbacks(execute=True):
                services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)
        with django_capture_on_commit_callbacks(execute=True):
            services.rating_submit(ticket_id=tickets[0].pk, caller=customer, score=5)
    finally:
        before_task_publish.disconnect(seen)
        app.conf.task_always_eager = eager
        app.control.purge()  # nothing here runs them: leave no message behind

    task = "tickets.tasks.store_agent_quality"
    assert published == [(task, True), (task, False)]
