"""In a real browser: the agent console keeps its promises about offers.

It acknowledges each offer it shows (``offer.seen``), declines with the reason
the agent chose, shows a waiting bonus, and asks for a resync after its socket
reconnects and when its tab comes back into view, so that an offer whose push
was lost still reaches the agent.

The page's agent socket is recorded by an init script (every frame sent and
received, and the socket itself), so that a test can wait on what the page and
the server said rather than on time.
"""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from agents import presence
from agents.models import Presence
from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch
from tests.conftest import sign_in
from tests.tickets.factories import TicketFactory
from tests.web.conftest import elsewhere
from tickets.models import Rung

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("short_lived_db_connections")]

RECORD_AGENT_SOCKET = """
(() => {
  const Native = window.WebSocket;
  const record = (window.__agentSocket = { sent: [], received: [] });
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      if (!String(url).includes("/ws/agent/")) return;
      record.socket = this;
      this.addEventListener("message", (event) => record.received.push(JSON.parse(event.data)));
    }
    send(data) {
      if (String(this.url).includes("/ws/agent/")) record.sent.push(JSON.parse(data));
      return super.send(data);
    }
  };
})();
"""

SNAPSHOTS = "window.__agentSocket.received.filter((m) => m.type === 'agent.snapshot').length"


# Headless Chromium keeps every tab visible, so the test tells the page what a
# browser would when the agent leaves the tab and comes back.
HIDE_AND_SHOW_THE_TAB = """
() => {
  for (const state of ["hidden", "visible"]) {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
    document.dispatchEvent(new Event("visibilitychange"));
  }
}
"""


def freeze_timers(page) -> None:
    """From now on the page's timers stand still, as a browser may hold back a hidden tab's."""
    page.clock.install()
    page.clock.pause_at(datetime.now(UTC) + timedelta(seconds=1))


@pytest.fixture(autouse=True)
def _a_long_offer_window(settings):
    # The window is the server's to enforce; a loaded test machine must not run it out.
    settings.HUMANLINE = {**settings.HUMANLINE, "OFFER_WINDOW_SECONDS": 120}


@pytest.fixture
def console(new_page, agent):
    """The agent, online, on the console with a live socket."""
    elsewhere(presence.agent_presence_set, agent_id=agent.pk, status=Presence.ONLINE)
    page = new_page()
    page.add_init_script(RECORD_AGENT_SOCKET)
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    sign_in(page, agent.user.email)
    page.goto("/agent/")
    expect(page.locator("#console-live-text")).to_have_text("Live")
    expect(page.get_by_test_id("presence")).to_have_text("Online")
    # The socket's first snapshot is in: an offer made from here on is not in it
    # (on a loaded machine it could be built after the test's first offer).
    page.wait_for_function(f"{SNAPSHOTS} >= 1")
    yield page
    assert errors == []


@pytest.fixture
def lost_offer_pushes(monkeypatch):
    """Every ``offer.created`` push is lost on the way, as Redis may lose a message."""
    from agents import events as agent_events

    deliver = agent_events.push_many_to_agents
    lost = []

    def push_many_to_agents(items):
        lost.extend(item for item in items if item[1].get("type") == "offer.created")
        deliver([item for item in items if item[1].get("type") != "offer.created"])

    monkeypatch.setattr("agents.events.push_many_to_agents", push_many_to_agents)
    return lost


def offer_to(agent, *, subject: str, escalation: int = Rung.NONE) -> Offer:
    ticket = TicketFactory(subject=subject, category="payments", escalation=escalation)
    offer = elsewhere(dispatch.offer_make, ticket_id=ticket.pk, agent_id=agent.pk)
    assert offer is not None
    return offer


def wait_until_seen(page, offer: Offer) -> None:
    """Until the page has acknowledged the offer and the server has recorded it.

    The consumer handles one frame at a time: a snapshot asked for after the
    page's ``offer.seen`` is built once the acknowledgement is written.
    """
    page.wait_for_function(
        """(id) => window.__agentSocket.sent.some((m) => m.type === "offer.seen"
          && m.offer_id === id)""",
        arg=offer.pk,
    )
    page.evaluate("window.__agentSocket.socket.send(JSON.stringify({ type: 'resync' }))")
    page.wait_for_function(
        """(id) => window.__agentSocket.received.some((m) => m.type === "agent.snapshot"
          && m.pending_offers.some((offer) => offer.id === id && offer.seen_at))""",
        arg=offer.pk,
    )
    assert Offer.objects.get(pk=offer.pk).seen_at is not None


def sent(page, kind: str) -> list[dict]:
    return page.evaluate("(kind) => window.__agentSocket.sent.filter((m) => m.type === kind)", kind)


def test_a_live_offer_is_acknowledged_once_and_declined_from_the_keyboard(console, agent):
    # when: an offer is pushed to the console
    offer = offer_to(agent, subject="Card blocked abroad")

    # then: it shows, and the console acknowledges it: the database has it seen
    card = console.get_by_test_id("offer").filter(has_text="Card blocked abroad")
    expect(card).to_be_visible()
    expect(card.get_by_test_id("waiting-bonus")).to_have_count(0)
    wait_until_seen(console, offer)

    # ... once: a resync that shows it again sends no second acknowledgement
    before = console.evaluate(SNAPSHOTS)
    console.evaluate(HIDE_AND_SHOW_THE_TAB)
    console.wait_for_function(f"{SNAPSHOTS} > {before}")
    assert [m["offer_id"] for m in sent(console, "offer.seen")] == [offer.pk]

    # when: the agent opens the decline choice from the keyboard
    decline = card.get_by_role("button", name="Decline")
    decline.focus()
    console.keyboard.press("Enter")

    # then: the reasons are offered, the first focused, each saying what it does
    expect(decline).to_have_attribute("aria-expanded", "true")
    not_mine = card.get_by_role("button", name="Not my area")
    expect(not_mine).to_be_focused()
    expect(not_mine).to_have_accessible_description("You won't be offered this ticket again.")
    expect(card.get_by_role("group", name="Decline because…")).to_be_visible()
    expect(card.get_by_role("button", name="Busy")).to_be_visible()
    expect(card.get_by_role("button", name="Other")).to_be_visible()

    # ... Escape closes the choice and gives the focus back to Decline
    console.keyboard.press("Escape")
    expect(not_mine).to_be_hidden()
    expect(decline).to_be_focused()
    expect(decline).to_have_attribute("aria-expanded", "false")

    # when: the agent declines as not their area
    console.keyboard.press("Enter")
    expect(not_mine).to_be_focused()
    console.keyboard.press("Enter")

    # then: the offer is declined with that reason, and the card goes
    expect(card).to_have_count(0)
    offer.refresh_from_db()
    assert (offer.status, offer.decline_reason) == (OfferStatus.DECLINED, "not_my_area")


def test_after_a_reconnect_the_console_resyncs_and_shows_an_offer_whose_push_was_lost(
    console, agent, lost_offer_pushes
):
    # given: an offer whose push never reached the console
    offer = offer_to(agent, subject="Refund missing")
    assert [message["offer"]["id"] for _, message in lost_offer_pushes] == [offer.pk]
    expect(console.get_by_test_id("offer")).to_have_count(0)
    console.evaluate("window.__agentSocket.sent.length = 0")

    # when: the socket drops and the console reconnects
    console.evaluate("document.getElementById('console').reconnect()")

    # then: the new socket asks for a resync, the offer shows and is acknowledged
    console.wait_for_function(
        "window.__agentSocket.sent.some((m) => m.type === 'resync')", polling=100
    )
    expect(console.get_by_test_id("offer").filter(has_text="Refund missing")).to_be_visible()
    expect(console.locator("#console-live-text")).to_have_text("Live")
    wait_until_seen(console, offer)


def test_when_the_tab_is_shown_again_the_console_resyncs_and_shows_an_offer_whose_push_was_lost(
    console, agent, lost_offer_pushes
):
    # given: an offer whose push never reached the console, its socket still open
    offer = offer_to(agent, subject="Transfer stuck")
    assert lost_offer_pushes
    expect(console.get_by_test_id("offer")).to_have_count(0)
    assert console.evaluate(SNAPSHOTS) == 1

    # when: the agent comes back to the tab
    console.evaluate(HIDE_AND_SHOW_THE_TAB)

    # then: the console asked for a snapshot on the same socket, and shows the offer
    card = console.get_by_test_id("offer").filter(has_text="Transfer stuck")
    expect(card).to_be_visible()
    assert console.evaluate(SNAPSHOTS) == 2
    assert len(sent(console, "resync")) == 1
    wait_until_seen(console, offer)


def test_an_offer_for_a_ticket_waiting_past_its_target_shows_its_waiting_bonus(console, agent):
    # when: a ticket on the waiting-bonus rung of the escalation ladder is offered
    offer = offer_to(agent, subject="Still waiting", escalation=Rung.WAITING_BONUS)

    # then: its card shows the bonus next to the pay, which includes it
    assert offer.waiting_bonus > 0
    card = console.get_by_test_id("offer").filter(has_text="Still waiting")
    expect(card.get_by_test_id("waiting-bonus")).to_have_text(
        f"+€{offer.waiting_bonus:.2f} waiting bonus"
    )
    expect(card.get_by_test_id("offer-pay")).to_have_text(f"€{offer.amount:.2f}")


def test_when_the_tab_is_shown_again_with_the_socket_down_the_console_reconnects_at_once(
    console,
):
    # given: the page's timers stand still and the socket drops: the reconnect
    # waits for a timer that does not fire
    freeze_timers(console)
    console.evaluate("document.getElementById('console').reconnect()")
    expect(console.locator("#console-live-text")).to_have_text("Reconnecting…")

    # when: the agent comes back to the tab
    console.evaluate(HIDE_AND_SHOW_THE_TAB)

    # then: the console reconnects without waiting for the timer, and catches up
    expect(console.locator("#console-live-text")).to_have_text("Live")
    console.clock.resume()  # the page's own polling (wait_for_function) needs its timers
    console.wait_for_function(f"{SNAPSHOTS} >= 2")


def test_with_the_socket_down_a_decline_goes_over_http_with_its_reason(console, agent):
    # given: an offer on the console, then the socket drops and stays down
    offer = offer_to(agent, subject="Parcel lost")
    card = console.get_by_test_id("offer").filter(has_text="Parcel lost")
    expect(card).to_be_visible()
    freeze_timers(console)
    console.evaluate("document.getElementById('console').reconnect()")
    expect(console.locator("#console-live-text")).to_have_text("Reconnecting…")

    # when: the agent declines it for another reason
    card.get_by_role("button", name="Decline").click()
    card.get_by_role("button", name="Other").click()

    # then: the answer went through the HTTP API, reason included
    expect(card.locator(".offer-tag")).to_have_text("Declined")
    offer.refresh_from_db()
    assert (offer.status, offer.decline_reason) == (OfferStatus.DECLINED, "other")
