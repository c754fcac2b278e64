"""``make chaos``: the full chaos run on a database and a Redis server of its own.

It restarts the machine's PostgreSQL once (every database on that server loses
its sessions for a few seconds: run it when nobody else's tests are running,
or pass ``--no-postgres-restart``).  Exit status 1 if an invariant fails.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fresh_database(url: str) -> None:
    import psycopg2

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    server = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname="postgres",
    )
    server.autocommit = True
    with server.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180, help="how long the load runs")
    parser.add_argument("--agents", type=int, default=24)
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--ping", type=float, default=20, help="seconds between an agent's pings")
    parser.add_argument("--faults", default="", help="comma-separated fault kinds, in order")
    parser.add_argument("--database", default="humanline_chaos")
    parser.add_argument(
        "--no-postgres-restart",
        action="store_true",
        help="skip the PostgreSQL restart (it disturbs everything else on the server)",
    )
    args = parser.parse_args()
    if not args.database.startswith("humanline_chaos"):
        parser.error("the database name must start with humanline_chaos (it is dropped first)")

    from chaos import run, stack

    server = urlparse(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/x")
    database_url = urlunparse(server._replace(path=f"/{args.database}"))
    fresh_database(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="humanline-chaos-"))
    redis = stack.PrivateRedis(workdir)
    redis.start()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url(0),
        # A production process: a key of its own, no testing flag, plain HTTP on loopback.
        "SECRET_KEY": "chaos-secret-key-not-for-production-0123456789-abcdefghijklmnop",
        "HUMANLINE_TESTING": "0",
        "DEBUG": "0",
        "SECURE": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    os.environ.update(env)
    # This process only seeds and checks: no persistent connection, so that its
    # connection after a PostgreSQL restart is a new one.
    os.environ["DB_CONN_MAX_AGE"] = "0"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    faults = args.faults.split(",") if args.faults else run.schedule(full=True)
    if args.no_postgres_restart and "postgres_restart" in faults:
        faults.remove("postgres_restart")
    options = run.Options(
        seconds=args.seconds,
        agents=args.agents,
        customers=args.customers,
        ping_seconds=args.ping,
        faults=faults,
        env=env,
        redis=redis,
        workdir=workdir,
    )
    try:
        outcome = run.run(options)
    finally:
        redis.kill()
    print(run.report(outcome))
    print(f"\nlogs of the stack's processes: {workdir}")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
