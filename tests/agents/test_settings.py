"""Settings come from the environment; production-like settings pass `check --deploy`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


PRODUCTION_SECRET = "k" * 20 + "-production-secret-that-is-long-and-random-9f8e7d6c5b4a"


# Settings are read without reaching the servers: any address will do.
DATABASE_URL = "postgres://humanline@db.internal:5432/humanline"
REDIS_URL = "redis://cache.internal:6379/0"


def production(**env) -> dict:
    """What a production-like process is started with."""
    return {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": PRODUCTION_SECRET,
        **env,
    }


def run_python(*args, **env):
    """Python in a process of its own, with only ``env`` (and a PATH and HOME) set."""
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_manage(*args, **env):
    return run_python("manage.py", *args, **env)


def test_production_like_settings_pass_the_deploy_check():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **production(ALLOWED_HOSTS="humanline.example.com"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("flag", ["DEBUG", "HUMANLINE_TESTING"])
def test_a_production_process_refuses_to_start_with_debug_or_the_testing_flag(flag):
    """With either flag on, the public key and (testing) the weak hasher came back."""
    without_key = {"DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, flag: "1"}
    for env in (without_key, production(**{flag: "1"})):
        result = run_manage("check", **env)
        assert result.returncode != 0
        assert f"{flag} is on with DATABASE_URL or REDIS_URL set" in result.stderr
        assert "refuses to start" in result.stderr


def test_the_embedded_default_may_run_with_debug():
    result = run_manage("check", DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_the_embedded_default_uses_sqlite_memory_layer_and_eager_tasks():
    probe = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'],"
        " s.CELERY_TASK_ALWAYS_EAGER, s.HUMANLINE['DEMO_DATA'])"
    )
    result = run_manage("shell", "--no-imports", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "channels.layers.InMemoryChannelLayer",
        "True",
        "True",
    ]


def test_database_and_redis_urls_select_the_production_stack():
    probe = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'],"
        " s.CELERY_BROKER_URL, s.CELERY_TASK_ALWAYS_EAGER, s.HUMANLINE['DEMO_DATA'])"
    )
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        probe,
        DATABASE_URL="postgres://u@db.internal:5432/hl",
        REDIS_URL="redis://cache.internal:6379/0",
        SECRET_KEY="s" * 60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "channels_redis.pubsub.RedisPubSubChannelLayer",
        "redis://cache.internal:6379/0",
        "False",
        "False",
    ]


def test_production_processes_keep_their_connections_and_check_them():
    probe = (
        "from django.conf import settings as s; d = s.DATABASES['default'];"
        "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])"
    )
    result = run_manage("shell", "--no-imports", "-c", probe, **production())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["300", "True"]

    result = run_manage("shell", "--no-imports", "-c", probe, **production(DB_CONN_MAX_AGE="0"))
    assert result.stdout.split() == ["0", "True"]


def _asgi_switch_interval(**env) -> subprocess.CompletedProcess:
    """Load the web processes' entry point as uvicorn does; print the GIL's switch interval."""
    probe = "import sys, config.asgi; print(sys.getswitchinterval())"
    return run_python("-c", probe, **production(**env))


def test_the_switch_interval_is_pythons_own_unless_set():
    default = _asgi_switch_interval()
    assert default.returncode == 0, default.stderr
    assert float(default.stdout) == 0.005  # Python's own default
    chosen = _asgi_switch_interval(GIL_SWITCH_INTERVAL_MS="2.5")
    assert chosen.returncode == 0, chosen.stderr
    assert float(chosen.stdout) == 0.0025


def test_what_the_web_process_loaded_is_frozen_only_when_set():
    """Out of the garbage collector's full passes: Django, the apps, their classes."""
    probe = "import gc, config.asgi; print(gc.get_freeze_count())"
    default = run_python("-c", probe, **production())
    frozen = run_python("-c", probe, **production(GC_FREEZE_AT_START="1"))
    assert default.returncode == frozen.returncode == 0, default.stderr + frozen.stderr
    assert int(default.stdout) == 0
    assert int(frozen.stdout) > 10_000


def test_the_procfile_sets_both_for_its_web_processes():
    web = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    assert "GIL_SWITCH_INTERVAL_MS=1 " in web and "GC_FREEZE_AT_START=1 " in web


def test_a_switch_interval_that_is_not_a_positive_number_of_milliseconds_is_refused():
    for wrong in ("abc", "0", "-1", "5000"):
        result = _asgi_switch_interval(GIL_SWITCH_INTERVAL_MS=wrong)
        assert result.returncode != 0, wrong
        assert "GIL_SWITCH_INTERVAL_MS must be a number of milliseconds" in result.stderr
        assert repr(wrong) in result.stderr


def test_the_preflight_of_make_test_needs_no_settings_and_names_what_is_down():
    """It runs before the suite, with no SECRET_KEY: importing the project's package
    must not load Django's settings."""
    result = run_python(
        "-m",
        "config.preflight",
        DATABASE_URL="postgres://u@127.0.0.1:9/x",
        REDIS_URL="redis://127.0.0.1:9/0",
    )

    assert result.returncode == 2, result.stderr
    assert "PostgreSQL is not reachable" in result.stdout + result.stderr
    assert "Redis is not reachable" in result.stdout + result.stderr
    assert "ImproperlyConfigured" not in result.stderr


def test_an_unknown_http_handler_is_refused():
    result = run_manage("check", HTTP_HANDLER="gunicorn")
    assert result.returncode != 0
    assert 'HTTP_HANDLER must be "pooled" or "django"' in result.stderr
    assert run_manage("check", HTTP_HANDLER="django").returncode == 0


def test_a_web_process_runs_requests_on_a_few_threads_unless_set():
    probe = (
        "import config.asgi; from config.asgi_http import PooledASGIHandler;"
        " print(PooledASGIHandler().threads)"
    )
    default = run_python("-c", probe, **production())
    chosen = run_python("-c", probe, **production(HTTP_THREADS="12"))
    assert default.returncode == chosen.returncode == 0, default.stderr + chosen.stderr
    assert int(default.stdout) == 4
    assert int(chosen.stdout) == 12
    refused = run_manage("check", **production(HTTP_THREADS="0"))
    assert refused.returncode != 0
    assert "HTTP_THREADS must be 1 or more, not 0." in refused.stderr


def test_the_channel_layer_spreads_over_the_redis_servers_listed():
    probe = (
        "from django.conf import settings as s;"
        "print(*(h['address'] for h in s.CHANNEL_LAYERS['default']['CONFIG']['hosts']))"
    )
    common = {
        "DATABASE_URL": "postgres://u@db.internal:5432/hl",
        "REDIS_URL": "redis://cache.internal:6379/0",
        "SECRET_KEY": "s" * 60,
    }

    alone = run_manage("shell", "--no-imports", "-c", probe, **common)
    spread = run_manage(
        "shell",
        "--no-imports",
        "-c",
        probe,
        CHANNELS_REDIS_URLS="redis://a.internal:6379/0,redis://b.internal:6379/0",
        **common,
    )

    assert alone.stdout.split() == ["redis://cache.internal:6379/0"], alone.stderr
    assert spread.stdout.split() == ["redis://a.internal:6379/0", "redis://b.internal:6379/0"]
