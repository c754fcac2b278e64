"""The ASGI entry point keeps what it loaded out of the garbage collector's full passes."""

import gc


def test_loading_the_asgi_application_freezes_what_it_loaded():
    import config.asgi  # noqa: F401  (the server imports it the same way)

    assert gc.get_freeze_count() > 10_000  # Django, the apps, their classes
