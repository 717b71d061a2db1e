#!/usr/bin/env python
"""Load benchmark of the annotation loop: N simulated annotators looping next -> judgement.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alignweb \\
        .venv/bin/python bench/annotation_load.py --annotators 50 --seconds 30

What it does, for each size in ``--sizes`` (default 10k and 1M comparisons):

1. creates a scratch database next to ``DATABASE_URL`` (``<name>_bench``; dropped at the end
   unless ``--keep-db``) and migrates it, so the benchmark never touches real data;
2. seeds a project of that size inside PostgreSQL itself (``INSERT ... SELECT generate_series``:
   prompts with 5 responses each, the 10 pairs of every prompt as comparisons);
3. starts gunicorn (gthread) on that database and runs ``--annotators`` threads, each one
   annotator with its own keep-alive connection and API token, looping next -> judgement;
4. counts afterwards, in the database, judgements beyond ``overlap``, an annotator judging one
   item twice, and counters (``open_slots``, ``judgement_count``, ``JudgementTally``) that
   disagree with the rows.

It prints ONE JSON object on stdout (progress goes to stderr): ``judgements_per_s`` and
p50/p95/p99 per endpoint at the first size, ``duplicates``, ``errors``, and "next" p95 at every
size with the ratio of the largest to the smallest.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]
RESPONSES_PER_PROMPT = 5


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=50, help="concurrent simulated annotators")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per size")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument(
        "--sizes", default="10000,1000000", help="comparisons per project, comma-separated (e.g. 1000)"
    )
    parser.add_argument("--overlap", type=int, default=3, help="judgements wanted per comparison")
    parser.add_argument(
        "--solo-seconds", type=float, default=5.0, help="seconds of one annotator alone after each run"
    )
    parser.add_argument(
        "--worker-class", default="gthread", choices=["gthread", "sync"], help="gunicorn worker class"
    )
    # One process per two cores shared with PostgreSQL: a keep-alive connection stays with the
    # worker that accepted it, and two workers split the 50 connections unevenly (43/7 and 40/10,
    # counted with ss), so one queued while the other idled. One worker has no split, and its
    # share of the two cores (about 0.7-0.9 of one at 300+ judgements/s) is within the GIL's one.
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument(
        "--threads", type=int, default=16, help="gunicorn threads per worker (they wait on the database)"
    )
    parser.add_argument(
        "--worker-connections",
        type=int,
        default=0,
        help="gunicorn --worker-connections (0: gunicorn's default); caps each worker's share of clients",
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="gunicorn --reuse-port: each worker listens on its own socket and the kernel spreads clients",
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--bench-db", default="", help="scratch database name (default: <name>_bench)")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch database afterwards")
    parser.add_argument("--seed", type=int, default=1, help="seed of the annotators' random choices")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size.replace("_", "")) for size in args.sizes.split(",") if size.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 10:
        parser.error("--sizes needs at least one size of 10 or more")
    if (
        args.annotators < 1
        or args.seconds <= 0
        or args.warmup < 0
        or args.overlap < 1
        or args.solo_seconds <= 0
    ):
        parser.error(
            "--annotators and --overlap must be >= 1, --seconds and --solo-seconds > 0, --warmup >= 0"
        )
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error(
            "the benchmark needs PostgreSQL: set DATABASE_URL=postgres://... (or pass --database-url); "
            f"got {args.database_url or 'nothing'!r}"
        )
    return args


# --- The scratch database --------------------------------------------------------------------------


def scratch_database(base_url: str, name: str) -> str:
    """Create (or recreate) the database ``name`` on the server of ``base_url``; return its URL."""
    import psycopg

    parts = urllib.parse.urlsplit(base_url)
    name = name or f"{parts.path.lstrip('/') or 'alignweb'}_bench"
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(url: str) -> None:
    import psycopg

    parts = urllib.parse.urlsplit(url)
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def setup_django(database_url: str, secret_key: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["SECRET_KEY"] = secret_key
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignweb.settings")
    os.environ.setdefault("STATIC_MANIFEST", "false")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- Seeding ---------------------------------------------------------------------------------------


def seed_project(*, size: int, overlap: int, annotators: list) -> tuple[str, float]:
    """A project of ``size`` open comparisons, built by PostgreSQL; returns (slug, seconds)."""
    from django.db import DatabaseError, connection, transaction

    from annotation.models import Membership, Project

    started = time.perf_counter()
    project = Project.objects.create(
        slug=f"bench-{size}", name=f"Bench {size:,}", overlap=overlap, lease_seconds=600
    )
    prompts = -(-size // len(PAIRS))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")  # a scratch database; speed over safety
        cursor.execute(
            """
            INSERT INTO annotation_prompt (project_id, messages, content_hash, source, held_back, created_at)
            SELECT %(project)s,
                   jsonb_build_array(jsonb_build_object('role', 'user', 'content',
                       'Benchmark question ' || g || ': explain **why** the sky is blue, briefly.')),
                   md5('p' || g) || md5('q' || g), 'bench', false, now()
            FROM generate_series(0, %(prompts)s - 1) AS g ORDER BY g
            """,
            {"project": project.pk, "prompts": prompts},
        )
        first_prompt = _first_contiguous_id(cursor, "annotation_prompt", "project_id", project.pk, prompts)
        cursor.execute(
            """
            INSERT INTO annotation_response (prompt_id, text, content_hash, source_name, model_version_name,
                generation_params, created_at)
            SELECT %(first)s + g / %(k)s,
                   'Answer ' || (g %% %(k)s) || ' to question ' || (g / %(k)s)
                       || E':\n\n- Rayleigh scattering\n- shorter wavelengths scatter more\n\n`code` too.',
                   md5('r' || g) || md5('s' || g), 'bench', '', '{}'::jsonb, now()
            FROM generate_series(0, %(prompts)s * %(k)s - 1) AS g ORDER BY g
            """,
            {"first": first_prompt, "k": RESPONSES_PER_PROMPT, "prompts": prompts},
        )
        cursor.execute(
            "SELECT min(r.id), count(*) FROM annotation_response r WHERE r.prompt_id BETWEEN %s AND %s",
            [first_prompt, first_prompt + prompts - 1],
        )
        first_response, responses = cursor.fetchone()
        cursor.execute(
            "SELECT max(id) FROM annotation_response WHERE prompt_id BETWEEN %s AND %s",
            [first_prompt, first_prompt + prompts - 1],
        )
        if cursor.fetchone()[0] - first_response + 1 != responses:
            raise RuntimeError("response ids are not contiguous; is something else writing to the bench DB?")
        cursor.execute(
            """
            INSERT INTO annotation_comparison (project_id, prompt_id, key, open_slots, judgement_count,
                priority, prior_choice, prior_source, is_gold, gold_choice, created_at)
            SELECT %(project)s, %(first)s + g / %(pairs)s, md5('c' || g) || md5('d' || g), %(overlap)s, 0,
                   random(), '', '', false, '', now()
            FROM generate_series(0, %(size)s - 1) AS g ORDER BY g
            """,
            {
                "project": project.pk,
                "first": first_prompt,
                "pairs": len(PAIRS),
                "overlap": overlap,
                "size": size,
            },
        )
        first_comparison = _first_contiguous_id(
            cursor, "annotation_comparison", "project_id", project.pk, size
        )
        lefts = [a for a, _ in PAIRS]
        rights = [b for _, b in PAIRS]
        cursor.execute(
            """
            INSERT INTO annotation_comparisonresponse (comparison_id, response_id, position)
            SELECT %(first_c)s + g,
                   %(first_r)s + (g / %(pairs)s) * %(k)s + (%(lefts)s::int[])[g %% %(pairs)s + 1], 0
            FROM generate_series(0, %(size)s - 1) AS g
            UNION ALL
            SELECT %(first_c)s + g,
                   %(first_r)s + (g / %(pairs)s) * %(k)s + (%(rights)s::int[])[g %% %(pairs)s + 1], 1
            FROM generate_series(0, %(size)s - 1) AS g
            """,
            {
                "first_c": first_comparison,
                "first_r": first_response,
                "pairs": len(PAIRS),
                "k": RESPONSES_PER_PROMPT,
                "lefts": lefts,
                "rights": rights,
                "size": size,
            },
        )
        Membership.objects.bulk_create(
            [Membership(project=project, user=user, role="annotator") for user in annotators]
        )
    with connection.cursor() as cursor:
        for table in ("prompt", "response", "comparison", "comparisonresponse", "assignment", "judgement"):
            cursor.execute(f"VACUUM ANALYZE annotation_{table}")
        # Write the seed's dirty pages out now, so a checkpoint of the seeding's WAL does not land
        # inside the measured seconds (needs a superuser or pg_checkpoint; skipped otherwise).
        try:
            with transaction.atomic():
                cursor.execute("CHECKPOINT")
        except DatabaseError as error:
            log(f"no CHECKPOINT before the run ({error}); the seed may be written back during it")
    return project.slug, time.perf_counter() - started


def _first_contiguous_id(cursor, table: str, column: str, value: int, expected: int) -> int:
    cursor.execute(f"SELECT min(id), max(id), count(*) FROM {table} WHERE {column} = %s", [value])
    low, high, count = cursor.fetchone()
    if count != expected or high - low + 1 != count:
        raise RuntimeError(f"{table}: expected {expected} contiguous ids, got {count} in {low}..{high}")
    return low


def create_annotators(count: int) -> list[tuple[object, str]]:
    """``count`` users with API tokens (no passwords: the benchmark only uses tokens)."""
    from django.contrib.auth import get_user_model

    from annotation.models import ApiToken
    from annotation.services.tokens import api_token_build

    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"bench-annotator-{i}", password="!unusable") for i in range(count)]
    )
    built = [api_token_build(user=user) for user in users]
    ApiToken.objects.bulk_create([token for token, _ in built])
    return [(user, key) for user, (_, key) in zip(users, built, strict=True)]


# --- The server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(
    *,
    database_url: str,
    secret_key: str,
    worker_class: str,
    workers: int,
    threads: int,
    worker_connections: int = 0,
    reuse_port: bool = False,
) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        SECRET_KEY=secret_key,
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_CONN_MAX_AGE="600",  # one connection per gunicorn thread, kept for the whole run
        STATIC_MANIFEST="false",
        LOG_LEVEL="WARNING",
    )
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [
        str(gunicorn) if gunicorn.exists() else "gunicorn",
        "alignweb.wsgi:application",
        "--worker-class", worker_class,
        "--workers", str(workers),
        "--threads", str(threads),
        "--bind", f"127.0.0.1:{port}",
        "--keep-alive", "30",
        "--backlog", "2048",
        "--log-level", "warning",
    ]  # fmt: skip
    if worker_connections:
        command += ["--worker-connections", str(worker_connections)]
    if reuse_port:
        command.append("--reuse-port")
    log(f"starting {' '.join(command[1:])}")
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    return process, port


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_up(port: int, token: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode} before serving")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api/projects/", headers={"Authorization": f"Token {token}"})
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer within a minute")


# --- CPU accounting -------------------------------------------------------------------------------
# On a shared machine wall-clock throughput says as much about the neighbours as about the code, so
# the CPU the server (gunicorn + its PostgreSQL backends) spends per judgement is reported as well.

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def server_pids(gunicorn_pid: int, database: str) -> dict[str, list[int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            [database],
        )
        backends = [pid for (pid,) in cursor.fetchall()]
    return {"app": process_tree(gunicorn_pid), "db": backends}


# --- The simulated annotators ----------------------------------------------------------------------


@dataclass
class Recorder:
    """Latencies and outcomes of one run; each annotator thread owns one, merged at the end."""

    next_ms: list[float] = field(default_factory=list)
    judgement_ms: list[float] = field(default_factory=list)
    judgements: int = 0
    empty: int = 0
    errors: list[str] = field(default_factory=list)


class KeepAliveClient:
    """One annotator's HTTP/1.1 keep-alive connection, as lean as a client can be.

    The load generator shares the two cores with the server it measures, so every microsecond it
    spends is taken from the server: ``http.client`` (header parsing through ``email``, one object
    per response) cost ~0.6 ms of CPU per judgement. This sends prepared bytes and reads the
    status line, the length and the body, which is all the benchmark looks at.
    """

    def __init__(self, port: int, headers: dict[str, str]):
        self.port = port
        self.head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.head += f"Host: 127.0.0.1:{port}\r\n"
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def post(self, path: str, body: bytes = b"") -> tuple[int, bytes]:
        try:
            try:
                return self._post(path, body)
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                # A keep-alive connection the server dropped: reconnect once. (A timeout is not
                # retried: the request may have been done, and a resent POST would be a replay.)
                self.close()
                return self._post(path, body)
        except BaseException:
            self.close()  # never read a later answer from a connection left half-way
            raise

    def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n"
        self.sock.sendall(request.encode("latin-1") + body)
        while True:
            while (end := self.buffer.find(b"\r\n\r\n")) < 0:
                self._receive()
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4 :]
            lines = head.split("\r\n")
            version, status = lines[0].split(" ", 2)[:2]
            status = int(status)
            if status >= 200:
                break  # 1xx answers (100 Continue) come before the real one
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
        connection_tokens = {token.strip() for token in fields.get("connection", "").split(",")}
        closing = "close" in connection_tokens or (
            version == "HTTP/1.0" and "keep-alive" not in connection_tokens
        )
        if status in (204, 304):
            data = b""
        elif "chunked" in fields.get("transfer-encoding", ""):
            data = self._read_chunked()
        elif "content-length" in fields:
            length = int(fields["content-length"])
            while len(self.buffer) < length:
                self._receive()
            data, self.buffer = self.buffer[:length], self.buffer[length:]
        else:
            data = self._read_to_close()  # no length: the body runs until the server closes
            closing = True
        if closing:
            self.close()
        return status, data

    def _read_to_close(self) -> bytes:
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                data, self.buffer = self.buffer, b""
                return data
            self.buffer += chunk

    def _read_chunked(self) -> bytes:
        data = b""
        while True:
            while (end := self.buffer.find(b"\r\n")) < 0:
                self._receive()
            size = int(self.buffer[:end].split(b";")[0], 16)
            while len(self.buffer) < end + 2 + size + 2:
                self._receive()
            if size == 0:
                # The last chunk, then optional trailer lines up to an empty line.
                self.buffer = self.buffer[end + 2 :]
                while (stop := self.buffer.find(b"\r\n")) != 0:
                    if stop < 0:
                        self._receive()
                        continue
                    self.buffer = self.buffer[stop + 2 :]
                self.buffer = self.buffer[2:]
                return data
            data += self.buffer[end + 2 : end + 2 + size]
            self.buffer = self.buffer[end + 2 + size + 2 :]

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += chunk


def annotate(
    *, port: int, token: str, slug: str, start: float, measure_from: float, stop: float, seed: int
) -> Recorder:
    record = Recorder()
    rng = random.Random(seed)
    client = KeepAliveClient(
        port,
        {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )

    def call(path: str, body: bytes | None) -> tuple[int, bytes, float]:
        began = time.perf_counter()
        status, data = client.post(path, body or b"")
        return status, data, (time.perf_counter() - began) * 1000

    while time.perf_counter() < start:
        time.sleep(0.001)
    while (now := time.perf_counter()) < stop:
        measuring = now >= measure_from
        try:
            status, data, ms = call(f"/api/projects/{slug}/next/", None)
            if measuring:
                record.next_ms.append(ms)
            if status == 204:
                record.empty += 1
                time.sleep(0.05)
                continue
            if status != 200:
                record.errors.append(f"next {status}: {data[:200]!r}")
                continue
            assignment_id = json.loads(data)["assignment"]["id"]
            choice = rng.choices(["left", "right", "tie", "both_bad"], weights=[45, 45, 7, 3])[0]
            body = {
                "choice": choice,
                "strength": rng.randrange(3) if choice in ("left", "right") else None,
                "rationale": "",
                "duration_ms": rng.randrange(2000, 30000),
            }
            status, data, ms = call(f"/api/assignments/{assignment_id}/judgement/", json.dumps(body).encode())
            if status != 201:
                record.errors.append(f"judgement {status}: {data[:200]!r}")
                continue
            if measuring:
                record.judgement_ms.append(ms)
                record.judgements += 1
        except Exception as error:  # every failure is counted and reported, none stops the run
            record.errors.append(f"{type(error).__name__}: {error}")
    client.close()
    return record


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "count": len(ordered),
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "mean": round(statistics.fmean(ordered), 2),
    }


def run_load(*, port: int, tokens: list[str], slug: str, warmup: float, seconds: float, seed: int) -> dict:
    start = time.perf_counter() + 0.5
    measure_from = start + warmup
    stop = measure_from + seconds
    results: list[Recorder] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        record = annotate(
            port=port,
            token=tokens[index],
            slug=slug,
            start=start,
            measure_from=measure_from,
            stop=stop,
            seed=seed * 1000 + index,
        )
        with lock:
            results.append(record)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    next_ms = [ms for r in results for ms in r.next_ms]
    judgement_ms = [ms for r in results for ms in r.judgement_ms]
    errors = [error for r in results for error in r.errors]
    judgements = sum(r.judgements for r in results)
    return {
        "judgements": judgements,
        "judgements_per_s": round(judgements / seconds, 1),
        "requests_per_s": round((len(next_ms) + len(judgement_ms)) / seconds, 1),
        "latency_ms": {
            "next": percentiles(next_ms),
            "judgement": percentiles(judgement_ms),
            "all": percentiles(next_ms + judgement_ms),
        },
        "empty_queue_answers": sum(r.empty for r in results),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
    }


# --- Checking the database afterwards --------------------------------------------------------------


def integrity(slug: str) -> dict:
    """Counted from the rows, not from the counters the code under test maintains."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH per AS (
                SELECT c.id, c.open_slots, c.judgement_count, p.overlap,
                       (SELECT count(*) FROM annotation_judgement j WHERE j.comparison_id = c.id) AS judged,
                       (SELECT count(*) FROM annotation_assignment a
                          WHERE a.comparison_id = c.id AND a.status = 'leased'
                            AND a.expires_at > now()) AS held
                FROM annotation_comparison c JOIN annotation_project p ON p.id = c.project_id
                WHERE p.slug = %s AND (c.judgement_count > 0 OR c.open_slots <> p.overlap
                    OR EXISTS (SELECT 1 FROM annotation_judgement j WHERE j.comparison_id = c.id))
            )
            SELECT coalesce(sum(greatest(judged - overlap, 0)), 0),
                   count(*) FILTER (WHERE judgement_count <> judged),
                   count(*) FILTER (WHERE open_slots <> overlap - judged - held),
                   coalesce(sum(judged), 0)
            FROM per
            """,
            [slug],
        )
        beyond_overlap, count_mismatches, slot_mismatches, judged = cursor.fetchone()
        cursor.execute(
            """
            SELECT count(*) FROM (
                SELECT j.comparison_id, j.annotator_id FROM annotation_judgement j
                JOIN annotation_comparison c ON c.id = j.comparison_id
                JOIN annotation_project p ON p.id = c.project_id
                WHERE p.slug = %s GROUP BY 1, 2 HAVING count(*) > 1
            ) AS twice
            """,
            [slug],
        )
        (twice,) = cursor.fetchone()
        # Annotators whose JudgementTally row (kept by triggers, read as "done") is not their count.
        cursor.execute(
            """
            SELECT count(*) FROM (
                SELECT j.annotator_id, count(*) AS judged FROM annotation_judgement j
                JOIN annotation_comparison c ON c.id = j.comparison_id
                JOIN annotation_project p ON p.id = c.project_id
                WHERE p.slug = %s GROUP BY 1
            ) AS counted FULL JOIN (
                SELECT t.annotator_id, t.judgements FROM annotation_judgementtally t
                JOIN annotation_project p ON p.id = t.project_id
                WHERE p.slug = %s AND t.judgements > 0
            ) AS tally USING (annotator_id)
            WHERE counted.judged IS DISTINCT FROM tally.judgements
            """,
            [slug, slug],
        )
        (tally_mismatches,) = cursor.fetchone()
    return {
        "judgements_in_db": int(judged),
        "beyond_overlap": int(beyond_overlap),
        "same_annotator_twice": int(twice),
        "counter_mismatches": int(count_mismatches),
        "slot_mismatches": int(slot_mismatches),
        "tally_mismatches": int(tally_mismatches),
    }


# --- Main ------------------------------------------------------------------------------------------


def python_speed_ms(repeats: int = 5) -> float:
    """Best of ``repeats`` timings of a fixed pure-Python workload (JSON, dicts, strings), in ms.

    How fast this machine runs interpreted code at the moment. On a shared machine the same code's
    CPU per judgement moves with it (2.5 to 4.2 ms of app CPU within one morning), so judgements/s
    and latencies are comparable only between runs with similar values.
    """
    payload = {
        "assignment": {
            "id": 1,
            "messages": [{"role": "user", "content": "question " * 50}],
            "responses": [{"position": i, "html": "<p>" + "word " * 200 + "</p>"} for i in range(2)],
        },
        "progress": {"done": 10, "left": 100},
    }
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        for i in range(2000):
            data = json.loads(json.dumps(payload))
            data["progress"]["done"] = i
            fields = {key: value for key, value in data["assignment"].items() if key != "id"}
            "-".join(f"{key}:{len(value)}" for key, value in fields.items())
        best = min(best, time.perf_counter() - began)
    return round(best * 1000, 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    secret_key = secrets.token_urlsafe(50)
    load_before = os.getloadavg()
    speed_before = python_speed_ms()
    bench_url = scratch_database(args.database_url, args.bench_db)
    log(f"scratch database {urllib.parse.urlsplit(bench_url).path.lstrip('/')}")
    setup_django(bench_url, secret_key)
    from django.core.management import call_command
    from django.db import connections

    server = None
    try:
        call_command("migrate", verbosity=0)
        annotators = create_annotators(args.annotators)
        tokens = [token for _, token in annotators]
        by_size = {}
        for size in args.sizes:
            log(f"seeding {size:,} comparisons")
            slug, seed_seconds = seed_project(
                size=size, overlap=args.overlap, annotators=[user for user, _ in annotators]
            )
            log(f"seeded in {seed_seconds:.1f}s")
            connections.close_all()
            if server is None:
                server, port = start_gunicorn(
                    database_url=bench_url,
                    secret_key=secret_key,
                    worker_class=args.worker_class,
                    workers=args.workers,
                    threads=args.threads,
                    worker_connections=args.worker_connections,
                    reuse_port=args.reuse_port,
                )
                wait_until_up(port, tokens[0], server)
            log(f"{args.annotators} annotators for {args.warmup:g}s warm-up + {args.seconds:g}s on {slug}")
            database = urllib.parse.urlsplit(bench_url).path.lstrip("/")
            cpu_before = {name: cpu_seconds(pids) for name, pids in server_pids(server.pid, database).items()}
            client_before = time.process_time()
            result = run_load(
                port=port, tokens=tokens, slug=slug, warmup=args.warmup, seconds=args.seconds, seed=args.seed
            )
            client_cpu = time.process_time() - client_before
            # One annotator alone: the cost of "next" itself, without 50 clients queueing for 2 cores.
            solo = run_load(
                port=port,
                tokens=tokens[:1],
                slug=slug,
                warmup=0.5,
                seconds=args.solo_seconds,
                seed=args.seed + 1,
            )
            result["solo_latency_ms"] = {k: v for k, v in solo["latency_ms"].items() if k != "all"}
            result["errors"] += solo["errors"]
            # Backends opened during the run were not in the first snapshot; they count from zero.
            cpu_after = {name: cpu_seconds(pids) for name, pids in server_pids(server.pid, database).items()}
            result["seed_seconds"] = round(seed_seconds, 1)
            result["integrity"] = integrity(slug)
            judged = result["integrity"]["judgements_in_db"]  # warm-up included, like the CPU deltas
            app_cpu = cpu_after["app"] - cpu_before["app"]
            db_cpu = max(cpu_after["db"] - cpu_before["db"], 0.0)
            result["cpu_ms_per_judgement"] = {
                "app": round(app_cpu * 1000 / judged, 2) if judged else None,
                "db": round(db_cpu * 1000 / judged, 2) if judged else None,
                "load_generator": round(client_cpu * 1000 / judged, 2) if judged else None,
            }
            if judged:
                server_ms = (app_cpu + db_cpu) * 1000 / judged
                # What the server side alone could sustain on two otherwise idle cores.
                result["projected_judgements_per_s_on_2_idle_cores"] = round(2000 / server_ms, 1)
            by_size[str(size)] = result
            log(
                f"{size:,}: {result['judgements_per_s']} judgements/s, next p95 "
                f"{result['latency_ms']['next']['p95']} ms, errors {result['errors']}"
            )
    finally:
        if server is not None:
            stop_gunicorn(server)
        connections.close_all()
        if not args.keep_db:
            drop_database(bench_url)

    first = by_size[str(args.sizes[0])]
    next_p95 = {size: result["latency_ms"]["next"]["p95"] for size, result in by_size.items()}
    smallest, largest = next_p95[str(min(args.sizes))], next_p95[str(max(args.sizes))]
    report = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "annotators": args.annotators,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "overlap": args.overlap,
        "server": {
            "gunicorn_worker_class": args.worker_class,
            "workers": args.workers,
            "threads": args.threads,
            "worker_connections": args.worker_connections or None,
            "reuse_port": args.reuse_port,
        },
        "judgements_per_s": first["judgements_per_s"],
        "requests_per_s": first["requests_per_s"],
        "latency_ms": {k: v for k, v in first["latency_ms"].items() if k != "all"},
        "p99_ms_all_requests": first["latency_ms"]["all"]["p99"],
        "duplicates": sum(
            r["integrity"]["beyond_overlap"] + r["integrity"]["same_annotator_twice"]
            for r in by_size.values()
        ),
        "counter_mismatches": sum(
            r["integrity"]["counter_mismatches"]
            + r["integrity"]["slot_mismatches"]
            + r["integrity"]["tally_mismatches"]
            for r in by_size.values()
        ),
        "errors": sum(r["errors"] for r in by_size.values()),
        "cpu_ms_per_judgement": first.get("cpu_ms_per_judgement"),
        "projected_judgements_per_s_on_2_idle_cores": first.get("projected_judgements_per_s_on_2_idle_cores"),
        "next_p95_ms_by_size": next_p95,
        "next_p95_ratio_largest_to_smallest": round(largest / smallest, 2) if smallest and largest else None,
        "next_p95_ms_by_size_one_annotator_alone": {
            size: result["solo_latency_ms"]["next"]["p95"] for size, result in by_size.items()
        },
        "by_size": by_size,
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            # A fixed pure-Python workload, best of 5, before and after: lower is a faster machine.
            "python_speed_ms_before_after": [speed_before, python_speed_ms()],
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
