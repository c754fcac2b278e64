"""The production-like stack, process by process, so that each can be killed alone.

``make serve`` runs the same processes under honcho; here they are started one
by one (two uvicorn processes of one worker each on two loopback ports, a
Celery worker on the ``celery``, ``dispatch`` and ``webhooks`` queues, beat) so that the
chaos suite can ``kill -9`` one of them and start it again, as a supervisor
(systemd, Kubernetes) would.  Redis is a server of the suite's own on a free
loopback port, never the machine's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], object], *, seconds: float, what: str, every: float = 0.1):
    """Poll another process until ``check()`` is truthy; its value, or AssertionError."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)  # polling another process, not pacing the system under test
    raise AssertionError(f"waited {seconds} s for {what}")


def answers_http(url: str) -> bool:
    """Does ``GET url`` answer 200 (a web process up, with its database)?"""
    import httpx

    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class PrivateRedis:
    """A throwaway redis-server on a loopback port, killed and started again at will.

    It keeps nothing on disk: a restart loses every key (queued tasks, channel
    groups, cache locks), as a Redis without persistence does.
    """

    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.dir = workdir
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is required (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, seconds=10, what="redis-server to answer")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Process:
    """One process of the stack, in a session of its own so that a kill reaches its children."""

    def __init__(self, name: str, command: list[str], env: dict, log: Path):
        self.name, self.command, self.env, self.log = name, command, env, log
        self.popen: subprocess.Popen | None = None
        self.kills = 0

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        """``kill -9`` the process and its children: no clean-up, no acknowledgement."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
            self.kills += 1

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


class Stack:
    """Two web processes, a worker (queues ``celery``, ``dispatch`` and ``webhooks``) and beat."""

    def __init__(self, env: dict, workdir: Path):
        self.env, self.workdir = env, workdir
        self.ports = [free_port(), free_port()]
        bin_dir = Path(sys.executable).parent
        self.web = [
            Process(
                f"web{i + 1}",
                [
                    str(bin_dir / "uvicorn"),
                    "config.asgi:application",
                    "--host=127.0.0.1",
                    f"--port={port}",
                    "--loop=uvloop",
                    "--http=httptools",
                    "--ws=websockets-sansio",
                    "--ws-per-message-deflate=false",
                    "--no-access-log",
                    "--timeout-graceful-shutdown=5",
                    "--log-level=warning",
                ],
                env,
                workdir / f"web{i + 1}.log",
            )
            for i, port in enumerate(self.ports)
        ]
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        # Workers keep their database connections between tasks, as deployed.
        worker_env = {**env, "DB_CONN_MAX_AGE": "600"}
        self.worker = Process(
            "worker",
            [
                *celery,
                "worker",
                # Threads, not prefork: kill -9 of the worker kills every task it held.
                "--pool=threads",
                "--concurrency=4",
                "-Q",
                "celery,dispatch,webhooks",
                "-n",
                "chaos@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
            ],
            worker_env,
            workdir / "worker.log",
        )
        self.beat = Process(
            "beat",
            [*celery, "beat", "--loglevel=WARNING", f"--schedule={workdir}/beat-schedule"],
            env,
            workdir / "beat.log",
        )

    def base(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def web_answers(self, index: int) -> bool:
        return self.web[index].alive() and answers_http(f"{self.base(index)}/healthz")

    def start_web(self, index: int, *, wait: float = 60) -> None:
        self.web[index].start()
        wait_for(
            lambda: self.web_answers(index), seconds=wait, what=f"{self.web[index].name} to answer"
        )

    def start(self) -> None:
        self.worker.start()
        self.beat.start()
        for index in range(len(self.web)):
            self.start_web(index)

    def processes(self) -> list[Process]:
        return [*self.web, self.worker, self.beat]

    def stop(self) -> None:
        for process in self.processes():
            process.stop()


def restart_postgresql(command: list[str] | None = None) -> None:
    """Restart the machine's PostgreSQL cluster (every database on it drops its sessions)."""
    if command is None:
        versions = sorted(os.listdir("/etc/postgresql"))
        command = [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            versions[-1],
            "main",
            "restart",
        ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def cut_database_sessions() -> int:
    """Terminate every session on Django's database but this one; how many there were."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (count,) = cursor.fetchone()
    connection.close()
    return count
