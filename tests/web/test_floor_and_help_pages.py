"""In a real browser: the operations floor updates without reload; the help centre on a phone."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents import services as agent_services
from agents.models import Presence
from marketplace.models import Offer, OfferStatus, PayPeriod
from marketplace.services import payroll
from tests.agents.test_onboarding import PNG
from tests.conftest import sign_in
from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory
from tests.web.conftest import elsewhere, screenshot, weeks_of_work
from tickets import services
from tickets.models import Feedback, Ticket, TicketStatus

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("short_lived_db_connections")]


def a_busy_hour(agent):
    """Tickets answered over the last hour, agents on the floor, offers and feedback."""
    now = timezone.now()
    waits = [12, 25, 31, 44, 52, 58, 75, 20, 16, 95, 38, 27, 64, 18, 33, 41, 22, 130]
    answered = []
    for i, wait in enumerate(waits):
        assigned_at = now - timedelta(minutes=58 - i * 3.2)
        answered.append(
            TicketFactory(
                status=TicketStatus.RESOLVED,
                assigned_agent=agent,
                queued_at=assigned_at - timedelta(seconds=wait),
                assigned_at=assigned_at,
                resolved_at=assigned_at + timedelta(minutes=4),
            )
        )
    for presence, active in [(Presence.ONLINE, 1), (Presence.ONLINE, 0), (Presence.AWAY, 0)]:
        other = AgentFactory(presence=presence, capacity=2)
        other.active_tickets = active
        other.save(update_fields=["active_tickets"])
    for i, status in enumerate([OfferStatus.ACCEPTED] * 7 + [OfferStatus.DECLINED, "expired"]):
        created = now - timedelta(minutes=40 - i)
        Offer.objects.create(
            ticket=answered[i],
            agent=agent,
            status=status,
            base_amount=Decimal("2.50"),
            surge_multiplier=Decimal("1.00"),
            amount=Decimal("2.50"),
            currency="EUR",
            created_at=created,
            expires_at=created + timedelta(seconds=15),
        )
    for area, kind, text in [
        ("card-payments", "bug", "Double charge when 3-D Secure times out."),
        ("card-payments", "bug", "Declined at checkout, money still reserved."),
        ("app-login", "confusing", "Customers cannot find the reset link."),
        ("savings", "feature_request", "Round-up savings for joint accounts."),
    ]:
        Feedback.objects.create(ticket=answered[0], agent=agent, area=area, kind=kind, text=text)


def weeks_of_payroll(agent, other_agent, staff):
    """Past weeks of pay: all closed but the last one, which has ended and waits for a close."""
    weeks_of_work(agent)
    weeks_of_work(other_agent, tickets_per_week=(1, 2, 1, 2, 1, 2, 3))
    now = timezone.now()
    ended = list(PayPeriod.objects.filter(ends_at__lte=now).order_by("starts_at"))
    for period in ended[:-1]:
        payroll.pay_period_close(period_id=period.pk, actor=staff)
    return ended[-1]


def applied_with_a_document(applicant):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("passport.png", PNG, content_type="image/png")
    elsewhere(agent_services.agent_document_upload, agent=applicant, upload=upload)


def test_the_floor_shows_the_waiting_ticket_and_updates_without_reload(
    new_page, staff, agent, other_agent, applicant
):
    to_close = weeks_of_payroll(agent, other_agent, staff)
    applied_with_a_document(applicant)
    a_busy_hour(agent)
    TicketFactory(subject="Card blocked abroad", queued_at=timezone.now() - timedelta(seconds=95))
    page = new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, staff.email)

    page.goto("/ops/")

    waiting = page.get_by_test_id("kpi-waiting")
    expect(waiting.locator("[data-figure=waiting]")).to_have_text("1")
    expect(page.get_by_test_id("waiting-tickets")).to_contain_text("Card blocked abroad")
    expect(page.locator("#floor-live")).to_have_attribute("data-state", "live")
    expect(page.locator("#answered-chart rect.bar")).to_have_count(24)
    expect(page.get_by_test_id("feedback-themes")).to_contain_text("card-payments")
    page.evaluate("window.__marker = 'same page'")

    # when: another customer joins the line, the floor shows it on its next poll
    TicketFactory(subject="Transfer stuck", priority="urgent")
    expect(waiting.locator("[data-figure=waiting]")).to_have_text("2")
    expect(page.get_by_test_id("waiting-tickets")).to_contain_text("Transfer stuck")
    expect(page.locator("#queue-chart polyline")).to_have_count(2)
    assert page.evaluate("window.__marker") == "same page"
    assert int(page.locator("#floor").get_attribute("data-polls")) >= 2

    # and: the review queue with the document, the pay periods with what each allows
    expect(page.get_by_test_id("review-queue")).to_contain_text("April Applicant")
    pay = page.get_by_test_id("pay-periods")
    expect(pay.get_by_role("button", name="Close week")).to_have_count(1)
    expect(pay.get_by_test_id(f"period-{to_close.pk}")).to_contain_text("Ended · to close")
    expect(pay.get_by_role("link", name="Export CSV").first).to_be_visible()
    assert pay.get_by_role("link", name="Export CSV").count() >= 3
    screenshot(page, "ops-floor")


def test_the_help_centre_on_a_phone(new_page, customer, agent):
    phone = new_page(viewport={"width": 390, "height": 844})
    sign_in(phone, customer.email)

    phone.goto("/help/")
    expect(phone.get_by_role("link", name="Talk to a person")).to_be_visible()
    phone.get_by_label("What do you need help with?").fill("Card charged twice")
    phone.get_by_label("Topic").select_option("payments")
    phone.get_by_label("Tell us more").fill("Two charges of 20 EUR for one order.")
    phone.get_by_role("button", name="Open a ticket").click()

    # then: the place in line, live, and nothing wider than the screen
    expect(phone.get_by_test_id("queue-place")).to_contain_text(
        re.compile(r"You are number 1 in line — about \d+ minutes?")
    )
    expect(phone.locator("[data-live=true]")).to_have_count(1)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    ticket = Ticket.objects.get(subject="Card charged twice")

    # when: an agent joins and writes
    elsewhere(services.ticket_assign, ticket_id=ticket.pk, agent_id=agent.pk)
    expect(phone.get_by_test_id("messages")).to_contain_text("Aisha joined the conversation")
    expect(phone.get_by_test_id("queue-place")).to_be_hidden()
    elsewhere(
        services.message_post,
        ticket_id=ticket.pk,
        caller=agent.user,
        body="Hi Carla, I'm Aisha. I can see both charges; let me fix that.",
    )
    expect(phone.get_by_test_id("messages")).to_contain_text("I can see both charges")
    phone.get_by_label("Your message").fill("Thank you, Aisha!")
    phone.get_by_role("button", name="Send", exact=True).click()
    expect(phone.get_by_test_id("messages")).to_contain_text("Thank you, Aisha!")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "help-centre")
