"""E-mails to agents about their shifts, in the agent's language and time zone."""

import zoneinfo

from django.utils import dateformat
from django.utils.translation import gettext as _
from django.utils.translation import override

from config.locale import recipient_language, user_time_zone
from marketplace.models import ShiftBooking
from outbox.services import mail


def mail_slot_cancelled(*, booking: ShiftBooking) -> None:
    """Owe the agent an e-mail: the shift they booked was cancelled."""
    user = booking.agent.user
    slot = booking.slot
    zone_name = user_time_zone(user) or "UTC"
    zone = zoneinfo.ZoneInfo(zone_name)
    with override(recipient_language(user)):
        mail(
            to=user.email,
            subject=_("A shift you booked was cancelled"),
            body=_(
                "Hello %(name)s,\n\n"
                "The shift on %(starts)s to %(ends)s (%(zone)s) that you booked has been "
                "cancelled by our operations team, and your place released.\n\n"
                "Reason: %(reason)s\n\n"
                "Other slots are open on your shift board.\n"
            )
            % {
                "name": user.first_name or user.name,
                # "l j F, H:i": the day and month named in the agent's language.
                "starts": dateformat.format(slot.starts_at.astimezone(zone), "l j F, H:i"),
                "ends": dateformat.format(slot.ends_at.astimezone(zone), "H:i"),
                "zone": zone_name,
                "reason": slot.cancel_reason or "-",
            },
        )
