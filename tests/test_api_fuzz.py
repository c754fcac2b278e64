"""API fuzzing: Schemathesis against the OpenAPI schema, as every persona.

For each persona (staff, an approved agent, an applicant in review, a
customer, an integration with its API key, and nobody), every operation the
schema at ``/api/schema/`` describes is called in-process through Django's
WSGI handler with the cases Schemathesis generates: its examples, coverage
(boundary and invalid values of each parameter and field) and fuzzing phases,
valid and invalid input alike.  Each response must pass three checks:

- ``not_a_server_error``: never a 5xx;
- ``status_code_conformance``: the status is one the schema documents;
- ``response_schema_conformance``: the body matches the schema for that status.

The run is bounded and repeatable: a fixed seed, derandomised generation, no
example database, ``MAX_EXAMPLES`` fuzzed cases per operation on top of the
coverage phase's; 5,573 cases a persona, 33,438 for all six.
Values that broke the API before are mixed into what is generated
(``HOSTILE_STRINGS``, ``HOSTILE_NUMBERS``), so that their return is found by
design, not by chance.  Each operation starts from the same small market
(``tests/api_fuzz.py``) inside a savepoint that is rolled back, so that what
staff do to it (close a pay week, revoke a key) does not change what the next
operation sees.  The end of the pytest run prints the cases and failures
(``tests/api_fuzz.write_summary``).  Nothing is excluded: every operation in
the schema is fuzzed, the identity document upload (multipart) included.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.api_fuzz import RUNS, PersonaRun, seed_market

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
PERSONAS = ["staff", "agent", "applicant", "customer", "integration", "anonymous"]
MAX_EXAMPLES = 25

# Values that broke this API before, mixed into generated strings and numbers: a NUL
# (PostgreSQL refuses it in text), the ends of the calendar and offsets past them, digits
# that are not ASCII, numbers past 32 and 64 bits.
HOSTILE_STRINGS = [
    "\x00",
    "a\x00b",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00+23:00",
    "9999-12-31T23:59:59-23:00",
    "²",
    "-1",
    "0",
    "1e3",
    "99999999999999999999999",
]
HOSTILE_NUMBERS = [0, -1, 2**31, 2**63, 10**18, 10**30]

CONFIG = {
    "seed": 20260105,
    "dictionaries": {
        "hostile-strings": {"values": HOSTILE_STRINGS},
        "hostile-numbers": {"values": HOSTILE_NUMBERS},
    },
    "generation": {
        "dictionaries": {
            "string": {"dictionary": "hostile-strings", "probability": 0.2},
            "integer": {"dictionary": "hostile-numbers", "probability": 0.2},
        },
        "mode": "all",  # valid and invalid input
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        "database": "none",
        # Each persona sends its own credentials; generated ones would only be refused.
        "with-security-parameters": False,
    },
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        # Sequences of calls linked by the schema: the schema declares no links.
        "stateful": {"enabled": False},
    },
}


@pytest.fixture
def in_process():
    """Requests served in the test's own transaction: Django's test client does the
    same, as a request's end would otherwise close the connection under it."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.postgres(
    "fuzzed once, on the production database, the stricter on crafted values; the"
    " embedded default shares every view and serializer"
)
@pytest.mark.parametrize("persona", PERSONAS)
def test_the_api_answers_as_its_schema_says(persona, db, in_process, request):
    market = seed_market()
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/", in_process, config=schemathesis.Config.from_dict(CONFIG)
    )

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        # A generated id almost never names a row: offer the market's ids too.
        if not path_parameters:
            return st.just(path_parameters)
        return st.fixed_dictionaries(
            {
                name: st.sampled_from([value, *market.ids.get(name, [])])
                for name, value in path_parameters.items()
            }
        )

    credentials = market.credentials[persona]
    headers = {"Authorization": credentials} if credentials else {}
    run = request.config.stash.setdefault(RUNS, {}).setdefault(persona, PersonaRun())

    def check(case):
        run.cases += 1
        case.call_and_validate(headers=headers, checks=CHECKS)

    for result in get_all_tests(schema=schema, test_func=check, settings=None, given_kwargs=None):
        if not isinstance(result, Ok):
            run.failures.append(("the schema", str(result.err())))
            continue
        operation, fuzz = result.ok()
        run.operations += 1
        cache.clear()  # throttles count per operation
        try:
            with transaction.atomic():
                try:
                    fuzz()
                finally:
                    transaction.set_rollback(True)
        except (Exception, BaseExceptionGroup) as exc:
            run.failures.append((operation.label, str(exc)))

    assert run.operations > 0
    assert not run.failures, "\n\n".join(f"{label}\n{report}" for label, report in run.failures)
