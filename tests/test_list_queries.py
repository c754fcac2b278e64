"""Every list answers in the same number of statements, whatever its page size and
however much it holds: no statement per row."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import AgentFactory
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory, next_grid_time
from tests.pay.helpers import accepted_and_resolved, online
from tests.tickets.factories import TicketFactory, assigned
from tickets import services as ticket_services

pytestmark = pytest.mark.django_db


def statements(client, path: str) -> int:
    client.get(path)  # the first pays once per process: prepared statements, a lane's order
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(queries)


def same_for_few_and_many(client, path: str, grow, *, sizes=("2", "20")) -> int:
    """The statements of ``path`` with little data, then with more (``grow()``),
    at two page sizes each: all the same, returned."""
    separator = "&" if "?" in path else "?"
    few = {statements(client, f"{path}{separator}page_size={size}") for size in sizes}
    grow()
    many = {statements(client, f"{path}{separator}page_size={size}") for size in sizes}
    assert len(few | many) == 1, (path, few, many)
    return few.pop()


def test_a_customers_tickets(api, customer):
    from tickets.models import Rung

    def more():
        for n in range(12):
            # Some waited long enough for the customer to be told why: that is
            # worked out for the page, not ticket by ticket.
            escalation = Rung.CUSTOMER_NOTICE if n % 3 else Rung.NONE
            TicketFactory(customer=customer, subject=f"T{n}", escalation=escalation)

    TicketFactory(customer=customer, escalation=Rung.CUSTOMER_NOTICE)
    assert same_for_few_and_many(api.as_(customer), "/api/v1/tickets/", more) == 3


def test_staffs_tickets_with_agents_and_ratings(api, staff):
    agent = AgentFactory(capacity=20)

    def more():
        for n in range(12):
            ticket = TicketFactory(subject=f"T{n}")
            if n % 3 == 0:
                assigned(ticket, agent)

    TicketFactory()
    assert same_for_few_and_many(api.as_(staff), "/api/v1/tickets/", more) == 2


def test_an_integrations_tickets(api, staff):
    raw, key = ticket_services.integration_key_create(actor=staff, integration_name="Bot")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")

    def more():
        for n in range(12):
            TicketFactory(integration=key.integration, subject=f"T{n}")

    TicketFactory(integration=key.integration)
    assert same_for_few_and_many(api, "/api/v1/tickets/", more) == 2


def test_the_review_queue(api, staff):
    from agents.models import AgentStatus

    def more():
        for _ in range(12):
            AgentFactory(status=AgentStatus.IN_REVIEW)

    AgentFactory(status=AgentStatus.IN_REVIEW)
    count = same_for_few_and_many(api.as_(staff), "/api/v1/admin/agents/?status=in_review", more)
    assert count == 7


def test_the_shift_board_and_an_agents_shifts(api, agent):
    def more():
        for day in range(2, 8):
            slot = ShiftSlotFactory(starts_at=next_grid_time(days=day))
            ShiftBookingFactory(slot=slot, agent=agent)

    ShiftBookingFactory(agent=agent)
    client = api.as_(agent)
    assert same_for_few_and_many(client, "/api/v1/shifts/", more) == 5
    assert same_for_few_and_many(client, "/api/v1/shifts/mine/", lambda: None) == 4


def test_staffs_shifts(api, staff):
    def more():
        for day in range(2, 8):
            ShiftBookingFactory(slot=ShiftSlotFactory(starts_at=next_grid_time(days=day)))

    ShiftSlotFactory()
    assert same_for_few_and_many(api.as_(staff), "/api/v1/admin/shifts/", more) == 3


def test_an_agents_offers(api):
    agent = online(AgentFactory(capacity=20))

    def more():
        for _ in range(6):
            accepted_and_resolved(agent)

    accepted_and_resolved(agent)
    client = api.as_(agent)
    # The 50 latest, whole: no page size.
    before = statements(client, "/api/v1/offers/")
    more()
    assert statements(client, "/api/v1/offers/") == before == 3


def test_an_agents_ledger(api):
    agent = online(AgentFactory(capacity=20))
    accepted_and_resolved(agent)
    client = api.as_(agent)
    before = statements(client, "/api/v1/agents/me/earnings/")
    for _ in range(6):
        accepted_and_resolved(agent)
    assert statements(client, "/api/v1/agents/me/earnings/") == before
    assert before <= 8, before


def test_staffs_pay_periods(api, staff):
    from marketplace.services import ledger

    def more():
        for weeks in range(1, 8):
            ledger.period_get_or_create(timezone.now() - timezone.timedelta(weeks=weeks))

    ledger.period_get_or_create(timezone.now())
    assert same_for_few_and_many(api.as_(staff), "/api/v1/admin/pay-periods/", more) == 4
