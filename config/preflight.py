"""Check that the test suite's PostgreSQL and Redis answer, with a clear message if not."""

import os
import sys
from urllib.parse import urlparse

START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": (
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
        "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ),
}


def main() -> int:
    problems = []
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    try:
        import psycopg2

        parsed = urlparse(database_url)
        server = psycopg2.connect(
            host=parsed.hostname,
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password,
            dbname="postgres",
            connect_timeout=5,
        )
        server.autocommit = True
        name = parsed.path.lstrip("/")
        with server.cursor() as cursor:
            # The suite creates test_<name> itself; <name> is created here so that
            # checks which connect to the configured database find it.
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if name and cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
        server.close()
    except Exception as exc:
        problems.append(("PostgreSQL", database_url, exc))
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=5).ping()
    except Exception as exc:
        problems.append(("Redis", redis_url, exc))
    for name, url, exc in problems:
        print(f"\n*** {name} is not reachable at {url}: {exc}".rstrip(), file=sys.stderr)
        print(f"    Start it with: {START[name]}", file=sys.stderr)
        print("    or point DATABASE_URL_TEST / REDIS_URL_TEST at one that runs.", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
