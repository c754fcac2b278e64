"""The Django admin for slots and bookings goes through the services."""

import pytest

from marketplace.models import ShiftEvent, ShiftSlot, SlotStatus
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff, clock):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


def _add(admin_client, **overrides):
    data = {
        "starts_at_0": "2030-01-08",
        "starts_at_1": "10:00:00",
        "ends_at_0": "2030-01-08",
        "ends_at_1": "11:00:00",
        "headcount": "3",
        "language": "",
        "skill": "",
        "incentive_kind": "",
        "incentive_amount": "",
        "incentive_currency": "",
        "bookings-TOTAL_FORMS": "0",
        "bookings-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return admin_client.post("/django-admin/marketplace/shiftslot/add/", data)


def test_staff_publish_a_slot_in_the_admin_with_an_audit_row(admin_client, staff, clock):
    response = _add(admin_client)
    assert response.status_code == 302, response.content[:2000]
    slot = ShiftSlot.objects.get()
    assert ShiftEvent.objects.filter(slot=slot, kind="slot_published", actor=staff).exists()


def test_the_admin_refuses_an_off_grid_slot(admin_client, clock):
    response = _add(admin_client, starts_at_1="10:10:00")
    assert response.status_code == 200
    assert b"30-minute grid" in response.content
    assert not ShiftSlot.objects.exists()


def test_the_admin_cancel_action_releases_bookings(admin_client, clock):
    booking = ShiftBookingFactory()
    admin_client.post(
        "/django-admin/marketplace/shiftslot/",
        {"action": "cancel_slots", "_selected_action": [booking.slot_id]},
    )
    booking.slot.refresh_from_db()
    booking.refresh_from_db()
    assert booking.slot.status == SlotStatus.CANCELLED
    assert booking.status == "cancelled"


def test_admin_lists_render(admin_client, clock):
    ShiftBookingFactory(slot=ShiftSlotFactory())
    for url in [
        "/django-admin/marketplace/shiftslot/",
        "/django-admin/marketplace/shiftbooking/",
        "/django-admin/marketplace/shiftevent/",
        "/django-admin/agents/presenceinterval/",
    ]:
        assert admin_client.get(url).status_code == 200, url
    slot = ShiftSlot.objects.get()
    assert (
        admin_client.get(f"/django-admin/marketplace/shiftslot/{slot.pk}/change/").status_code
        == 200
    )
