"""``Authorization: Token``: one prepared statement, DRF's rules (config.authentication)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from agents.models import User
from config import authentication
from tests.tickets.factories import TicketFactory

pytestmark = pytest.mark.django_db


def test_the_user_read_is_the_user_the_orm_reads(customer):
    customer.is_superuser = True  # booleans and datetimes come back as Python values
    customer.save()
    key = Token.objects.create(user=customer).key

    with CaptureQueriesContext(connection) as queries:
        user, token = authentication.TokenAuthentication().authenticate_credentials(key)

    expected = User.objects.get(pk=customer.pk)
    for field in User._meta.concrete_fields:
        assert getattr(user, field.attname) == getattr(expected, field.attname), field.name
    assert type(user.date_joined) is type(expected.date_joined)
    assert user.is_superuser is True and user.is_active is True
    assert (token.key, token.user is user, token.created) == (
        key,
        True,
        Token.objects.get(pk=key).created,
    )
    assert not user._state.adding  # saved, as the ORM's would be
    assert len(queries) in (1, 2)  # EXECUTE (PREPARE once per connection before it)


def test_a_request_with_a_token_is_that_user_s(api, customer, other_customer):
    mine = TicketFactory(customer=customer)
    TicketFactory(customer=other_customer)

    response = api.as_(customer).get("/api/v1/tickets/")

    assert response.status_code == 200, response.content
    assert [ticket["id"] for ticket in response.json()["results"]] == [mine.pk]


def test_an_unknown_key_is_refused_with_drf_s_message(api):
    api.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")

    response = api.get("/api/v1/tickets/")

    # 403, not 401: session authentication comes first and sends no challenge (DRF).
    assert response.status_code == 403
    assert "Invalid token." in str(response.json())


def test_an_inactive_user_s_token_is_refused(api, customer):
    client = api.as_(customer)
    User.objects.filter(pk=customer.pk).update(is_active=False)

    response = client.get("/api/v1/tickets/")

    assert response.status_code == 403
    assert "User inactive or deleted." in str(response.json())
