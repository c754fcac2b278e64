"""E-mails to agents about their shifts."""

from django.core.mail import send_mail

from marketplace.models import ShiftBooking


def send_slot_cancelled_email(*, booking_id: int) -> None:
    booking = ShiftBooking.objects.select_related("slot", "agent__user").get(pk=booking_id)
    user = booking.agent.user
    slot = booking.slot
    send_mail(
        "A shift you booked was cancelled",
        (
            f"Hello {user.first_name or user.name},\n\n"
            f"The shift on {slot.starts_at:%A %d %B, %H:%M} to {slot.ends_at:%H:%M} UTC that you "
            f"booked has been cancelled by our operations team, and your place released.\n\n"
            f"Reason: {slot.cancel_reason or '-'}\n\n"
            "Other slots are open on your shift board.\n"
        ),
        None,
        [user.email],
    )
