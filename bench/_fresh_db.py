"""Shared by the in-process benchmarks: Django on a database of their own, fresh each run.

Not a benchmark itself (``make bench`` runs ``bench/[!_]*.py``).
"""

import os


def django_on_fresh_database(name: str) -> str:
    """Drop and create database ``name`` on the server of DATABASE_URL, point
    Django at it, set Django up and migrate.  Returns its URL."""
    import psycopg2

    base = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/humanline"
    server = base.rsplit("/", 1)[0]
    admin = psycopg2.connect(server + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()

    url = f"{server}/{name}"
    os.environ["DATABASE_URL"] = url
    # A production-like process (the testing flag is the suite's alone): its own
    # key, and no persistent connection, so that the next run can drop the database.
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789-abcdefgh")
    os.environ.setdefault("DB_CONN_MAX_AGE", "0")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url
