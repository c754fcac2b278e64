"""Under ASGI the CSV is streamed chunk by chunk, not read whole before the first byte."""

from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from marketplace.services import ledger, payroll

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("short_lived_db_connections"),
]


def closed_week(agent, staff):
    entry = ledger.adjustment_create(actor=staff, agent_id=agent.pk, amount="2.00", reason="x")
    payroll.pay_period_close(
        period_id=entry.period_id, actor=staff, now=datetime(2030, 1, 14, tzinfo=UTC)
    )
    return entry.period


@pytest.mark.asyncio
async def test_the_export_streams_asynchronously_under_asgi(agent, staff, clock):
    period = await sync_to_async(closed_week)(agent, staff)
    client = AsyncClient()
    await client.aforce_login(staff)

    response = await client.get(f"/api/v1/admin/pay-periods/{period.pk}/export.csv")

    assert response.status_code == 200 and response.is_async
    body = b"".join([chunk async for chunk in response.streaming_content])
    expected = await sync_to_async(lambda: b"".join(payroll.export_chunks(period.pk)))()
    assert body == expected and body.count(b"\r\n") == 2
