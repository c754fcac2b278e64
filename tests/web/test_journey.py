"""In a real browser: the console and the help centre side by side, then the whole journey.

The first test: the agent goes online, a customer opens a ticket, the offer
pops up on the console with its pay and a countdown, the agent accepts, the
two talk live, the agent resolves and tags feedback, the customer rates.

The second: someone applies and uploads a document, staff approve, the agent
books a shift and goes online, a customer's ticket is offered and accepted,
they talk, the agent resolves, the customer rates, and staff close the week on
the floor and download the payroll CSV with the agent's task pay.
"""

import csv
import io
import re
import zoneinfo
from datetime import timedelta

import pytest
import time_machine
from playwright.sync_api import expect

from agents.models import Agent, AgentStatus, Presence
from marketplace.models import EntryKind, LedgerEntry, Offer, OfferStatus, ShiftBooking
from marketplace.services import payroll
from tests.agents.test_onboarding import PNG
from tests.conftest import sign_in
from tests.factories import UserFactory
from tests.marketplace.factories import ShiftSlotFactory
from tests.web.conftest import elsewhere, screenshot, weeks_of_work
from tickets import services
from tickets.models import Feedback, Rating, Ticket, TicketStatus

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("short_lived_db_connections")]


def open_ticket(*, customer, subject: str, category: str = "payments") -> Ticket:
    return services.ticket_open(
        caller=customer,
        new=services.NewTicket(subject=subject, body="Please help.", category=category),
    ).ticket


def test_an_offer_pops_up_is_accepted_and_the_two_talk_until_rated(new_page, agent, customer):
    # given: the agent, with some weeks of work behind them, on the console, online
    weeks_of_work(agent)
    console = new_page(viewport={"width": 1280, "height": 800})
    sign_in(console, agent.user.email)
    errors = []
    console.on("pageerror", lambda error: errors.append(error))
    console.goto("/agent/")
    expect(console.get_by_role("heading", name=re.compile("Hi Aisha"))).to_be_visible()
    expect(console.locator("#console-live-text")).to_have_text("Live")
    console.get_by_role("button", name="Online", exact=True).click()
    expect(console.get_by_test_id("presence")).to_have_text("Online")
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE

    # when: a customer opens a ticket in the help centre (another browser context)
    help_page = new_page()
    sign_in(help_page, customer.email)
    help_page.goto("/help/")
    help_page.get_by_label("What do you need help with?").fill("Card charged twice")
    help_page.get_by_label("Topic").select_option("payments")
    help_page.get_by_label("Tell us more").fill("Two charges of 20 EUR for one order.")
    help_page.get_by_role("button", name="Open a ticket").click()
    ticket = Ticket.objects.get(subject="Card charged twice")

    # then: the offer pops up at once with the pay and a live countdown, a sound and a title cue
    offer_card = console.get_by_test_id("offer")
    expect(offer_card).to_be_visible()
    expect(offer_card).to_contain_text("Card charged twice")
    offer = Offer.objects.get(ticket=ticket)
    expect(offer_card.get_by_test_id("offer-pay")).to_have_text(f"€{offer.amount}")
    expect(console).to_have_title("(1) New offer · Humanline")
    assert int(console.locator("#console").get_attribute("data-beeps")) >= 1
    first = int(offer_card.get_by_test_id("countdown").inner_text())
    assert 0 < first <= 15
    expect(offer_card.get_by_test_id("countdown")).not_to_have_text(str(first))

    # when: the agent accepts
    offer_card.get_by_role("button", name="Accept").click()

    # then: the conversation opens on the console, and the customer sees the agent join
    pane = console.get_by_test_id("pane")
    expect(pane.get_by_role("heading", name="Card charged twice")).to_be_visible()
    expect(console.get_by_test_id("active-tickets")).to_contain_text("Card charged twice")
    expect(console).to_have_title(re.compile(r"^Agent console"))
    assert Offer.objects.get(ticket=ticket).status == OfferStatus.ACCEPTED
    expect(help_page.get_by_test_id("messages")).to_contain_text("Aisha joined the conversation")
    expect(help_page.get_by_test_id("ticket-agent")).to_have_text("Aisha is helping you.")
    expect(help_page.get_by_test_id("queue-place")).to_be_hidden()

    # ... and they talk, live, both ways
    expect(pane.locator("[data-live=true]")).to_have_count(0)  # the pane itself is the root
    expect(console.locator("#pane[data-live=true]")).to_have_count(1)
    pane.get_by_label("Your message").fill("Hi Carla, I can see both charges.")
    pane.get_by_role("button", name="Send", exact=True).click()
    expect(help_page.get_by_test_id("messages")).to_contain_text("I can see both charges.")
    help_page.get_by_label("Your message").fill("Thank you! Can you refund one?")
    help_page.get_by_label("Your message").press("Enter")
    expect(pane.get_by_test_id("messages")).to_contain_text("Can you refund one?")

    # when: a second customer needs help, the console offers it beside the conversation
    other = UserFactory(email="dora@example.org", name="Dora Customer")
    elsewhere(open_ticket, customer=other, subject="Refund not arrived")
    second = console.get_by_test_id("offer").filter(has_text="Refund not arrived")
    expect(second).to_contain_text("Refund not arrived")
    expect(second).not_to_have_class(re.compile("arriving"))
    screenshot(console, "agent-console")
    second.get_by_role("button", name="Decline").click()
    second.get_by_role("button", name="Busy").click()
    expect(second).to_have_count(0)
    declined = Offer.objects.get(ticket__subject="Refund not arrived")
    assert (declined.status, declined.decline_reason) == (OfferStatus.DECLINED, "busy")

    # when: the connection drops, the console reconnects and resyncs without a reload
    console.evaluate("window.__marker = 'same page'")
    console.evaluate("document.getElementById('console').reconnect()")
    expect(console.locator("#console-live-text")).to_have_text("Live")
    expect(console.get_by_test_id("active-tickets")).to_contain_text("Card charged twice")
    assert console.evaluate("window.__marker") == "same page"

    # when: the agent resolves and tags product feedback
    pane.get_by_role("button", name="Mark as resolved").click()
    expect(console.get_by_test_id("pane-status")).to_have_text("Resolved")
    expect(console.get_by_test_id("active-tickets")).not_to_contain_text("Card charged twice")
    pane = console.get_by_test_id("pane")
    pane.get_by_label("Product area").fill("card-payments")
    pane.get_by_label("Kind").select_option("bug")
    pane.get_by_label("What did you learn?").fill(
        "Double charge when the 3-D Secure page times out."
    )
    pane.get_by_role("button", name="Send feedback").click()
    expect(pane).to_contain_text("the product team will see it")
    assert Feedback.objects.get(ticket=ticket).area == "card-payments"

    # then: the customer rates
    expect(help_page.get_by_test_id("ticket-status")).to_have_text("Resolved")
    help_page.get_by_label("5", exact=True).check()
    help_page.get_by_label("Anything to add? (optional)").fill("Fast and kind.")
    help_page.get_by_role("button", name="Send rating").click()
    expect(help_page.get_by_test_id("rating")).to_have_text(re.compile("You rated this help 5/5"))
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED
    assert Rating.objects.get(ticket=ticket).score == 5
    assert errors == []


def test_the_whole_journey_from_application_to_payroll(new_page, staff, customer, tmp_path):
    # given: a shift slot tomorrow, published by operations
    slot = ShiftSlotFactory(created_by=staff)

    # when: someone applies at /apply/ and uploads an identity document
    agent_page = new_page()
    errors = []
    agent_page.on("pageerror", lambda error: errors.append(error))
    agent_page.goto("/apply/")
    agent_page.get_by_label("Full name").fill("Bea Browser")
    agent_page.get_by_label("E-mail address").fill("bea@example.org")
    agent_page.get_by_label("Password").fill("a-long-secret-phrase")
    agent_page.get_by_label("Which describes you best?").select_option("student")
    agent_page.get_by_label("Languages you can support customers in").fill("en, fr")
    agent_page.get_by_label("Payments").check()
    agent_page.get_by_label("Country").fill("FR")
    agent_page.get_by_label("Time zone").select_option("Europe/Paris")
    agent_page.get_by_role("button", name="Send application").click()
    expect(agent_page.get_by_test_id("application-status")).to_have_text("Applied")
    document = tmp_path / "passport.png"
    document.write_bytes(PNG)
    agent_page.get_by_label("Identity document").set_input_files(str(document))
    agent_page.get_by_role("button", name="Upload").click()
    expect(agent_page.get_by_test_id("application-status")).to_have_text("In review")

    # then: the floor's review card lists them with their document, and staff approve
    ops = new_page()
    sign_in(ops, staff.email)
    ops.goto("/ops/")
    review = ops.get_by_test_id("review-queue")
    expect(review).to_contain_text("Bea Browser")
    expect(review.get_by_role("link", name=re.compile("Identity document of Bea"))).to_be_visible()
    review.get_by_role("link", name="Review queue →").click()
    row = ops.locator("tr", has_text="bea@example.org")
    row.get_by_role("button", name="Approve").click()
    expect(ops.get_by_text("Bea Browser is now approved.")).to_be_visible()
    bea = Agent.objects.get(user__email="bea@example.org")
    assert bea.status == AgentStatus.APPROVED

    # when: the new agent books the shift and goes online on the console
    agent_page.goto("/agent/shifts/")
    agent_page.locator(f"[data-slot='{slot.pk}']").get_by_role("button", name="Book").click()
    # the board shows times in the time zone Bea declared when she applied
    in_paris = slot.starts_at.astimezone(zoneinfo.ZoneInfo("Europe/Paris"))
    expect(agent_page.get_by_test_id("my-shifts")).to_contain_text(f"{in_paris:%H:%M}")
    assert ShiftBooking.objects.get(agent=bea, slot=slot).status == "booked"
    agent_page.goto("/agent/")
    expect(agent_page.get_by_role("heading", name=re.compile("Hi Bea"))).to_be_visible()
    expect(agent_page.locator("#console-live-text")).to_have_text("Live")
    agent_page.get_by_role("button", name="Online", exact=True).click()
    expect(agent_page.get_by_test_id("presence")).to_have_text("Online")

    # when: a customer opens a ticket in the help centre
    help_page = new_page()
    sign_in(help_page, customer.email)
    help_page.goto("/help/")
    help_page.get_by_label("What do you need help with?").fill("Refund for a double charge")
    help_page.get_by_label("Topic").select_option("payments")
    help_page.get_by_label("Tell us more").fill("I was charged twice for one order.")
    help_page.get_by_role("button", name="Open a ticket").click()

    # then: the offer pops up on the agent's page with the pay, and is accepted
    offer_card = agent_page.get_by_test_id("offer")
    expect(offer_card).to_contain_text("Refund for a double charge")
    ticket = Ticket.objects.get(subject="Refund for a double charge")
    offer = Offer.objects.get(ticket=ticket, agent=bea)
    expect(offer_card.get_by_test_id("offer-pay")).to_have_text(f"€{offer.amount}")
    offer_card.get_by_role("button", name="Accept").click()
    expect(help_page.get_by_test_id("ticket-agent")).to_have_text("Bea is helping you.")

    # ... and the two talk, live, each in their own browser context
    pane = agent_page.get_by_test_id("pane")
    pane.get_by_label("Your message").fill("Hi Carla, I see both charges and will refund one.")
    pane.get_by_role("button", name="Send", exact=True).click()
    expect(help_page.get_by_test_id("messages")).to_contain_text("will refund one")
    help_page.get_by_label("Your message").fill("Thank you so much!")
    help_page.get_by_role("button", name="Send", exact=True).click()
    expect(pane.get_by_test_id("messages")).to_contain_text("Thank you so much!")

    # when: the agent resolves, the task pay shows on their earnings card at once
    pane.get_by_role("button", name="Mark as resolved").click()
    expect(agent_page.get_by_test_id("pane-status")).to_have_text("Resolved")
    expect(agent_page.get_by_test_id("week-total")).to_have_text(f"€{offer.amount}")

    # ... and the customer rates the help
    expect(help_page.get_by_test_id("ticket-status")).to_have_text("Resolved")
    help_page.get_by_label("5", exact=True).check()
    help_page.get_by_role("button", name="Send rating").click()
    expect(help_page.get_by_test_id("rating")).to_have_text(re.compile("You rated this help 5/5"))
    task = LedgerEntry.objects.get(ticket=ticket, kind=EntryKind.TASK)
    assert task.agent == bea and task.amount == offer.amount

    # when: the week is over, staff close it on the floor and download the payroll CSV.
    # time_machine replaces the clock functions of the whole process, so the live
    # server's threads see the jump too (the browser keeps its own clock, which
    # nothing here depends on).  The journey itself ran on the real clock, so the
    # pay landed in the real current week; only now do we move past its end, with
    # tick=True so that time keeps flowing for the polls and timeouts that follow.
    period = task.period
    with time_machine.travel(period.ends_at + timedelta(minutes=5), tick=True):
        ops.goto("/ops/")
        row = ops.get_by_test_id(f"period-{period.pk}")
        expect(row.get_by_test_id("period-status")).to_have_text("Ended · to close")
        row.get_by_role("button", name="Close week").click()
        row = ops.get_by_test_id(f"period-{period.pk}")
        expect(row.get_by_test_id("period-status")).to_have_text("Closed")
        with ops.expect_download() as download:
            row.get_by_role("link", name="Export CSV").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)

    # then: the CSV has the agent's row with the task pay
    period.refresh_from_db()
    assert period.status == "closed" and period.closed_by == staff
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(saved.read_text()))}
    assert rows["bea@example.org"]["task"] == f"{offer.amount:.2f}"
    assert rows["bea@example.org"]["task_count"] == "1"
    assert saved.read_bytes() == b"".join(payroll.export_chunks(period.pk))
    assert errors == []
