"""E-mails to agents about their shifts."""

from marketplace.models import ShiftBooking
from outbox.services import mail


def mail_slot_cancelled(*, booking: ShiftBooking) -> None:
    """Owe the agent an e-mail: the shift they booked was cancelled."""
    user = booking.agent.user
    slot = booking.slot
    mail(
        to=user.email,
        subject="A shift you booked was cancelled",
        body=(
            f"Hello {user.first_name or user.name},\n\n"
            f"The shift on {slot.starts_at:%A %d %B, %H:%M} to {slot.ends_at:%H:%M} UTC that you "
            f"booked has been cancelled by our operations team, and your place released.\n\n"
            f"Reason: {slot.cancel_reason or '-'}\n\n"
            "Other slots are open on your shift board.\n"
        ),
    )
