"""Export benchmark: seed N judgements in PostgreSQL, export them as ``trl`` and ``votes``.

    python bench/export_speed.py --rows 1000000

Prints ONE JSON object: per format the judgements read per second, the rows written and the
peak RSS of a fresh process that did only that export. Seeding uses ``INSERT ... SELECT
generate_series`` into a scratch database (``--database-url``, dropped afterwards unless
``--keep``): 3 judgements per comparison from 20 annotators, two responses of ~120 characters.
Target: >= 100,000 judgements/s and peak RSS < 300 MB per format.
"""

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/alignweb_bench"
OVERLAP = 3
ANNOTATORS = 20  # with 7 * k mod 20, the three annotators of a comparison are always distinct
SLUG = "bench"


def django_setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignweb.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def recreate_database(database_url: str, *, drop_only: bool = False) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"--database-url must name a plain database, not {name!r}.")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(rows: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from annotation.models import Project

    call_command("migrate", verbosity=0)
    project = Project.objects.create(slug=SLUG, name="Export benchmark", overlap=OVERLAP)
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"bench{i:02d}") for i in range(ANNOTATORS)]
    )
    user_ids = [user.pk for user in users]
    comparisons = -(-rows // OVERLAP)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO annotation_prompt (project_id, messages, content_hash, source, held_back, created_at)
            SELECT %s, jsonb_build_array(jsonb_build_object('role', 'user', 'content',
                   'Question number ' || g || ': how do I keep a sourdough starter alive?')),
                   md5(g::text) || md5('p' || g), 'bench', false, now()
            FROM generate_series(1, %s) AS g
            """,
            [project.pk, comparisons],
        )
        cursor.execute(
            """
            INSERT INTO annotation_response
                (prompt_id, text, content_hash, source_name, model_version_name, generation_params,
                 created_at)
            SELECT p.id, 'Answer ' || s.side || ' to ' || p.id || ': feed it flour and water daily, '
                   || 'keep it warm, discard half before feeding, and watch for bubbles.',
                   md5(p.id || s.side) || md5(s.side || p.id), 'bench-' || s.side, '', '{}'::jsonb, now()
            FROM annotation_prompt p CROSS JOIN (VALUES ('a'), ('b')) AS s(side)
            WHERE p.project_id = %s
            """,
            [project.pk],
        )
        cursor.execute(
            """
            INSERT INTO annotation_comparison (project_id, prompt_id, key, open_slots, judgement_count,
                priority, prior_choice, prior_source, is_gold, gold_choice, created_at)
            SELECT %s, p.id, md5('c' || p.id) || md5(p.id || 'c'), 0, %s, 0, '', '', false, '', now()
            FROM annotation_prompt p WHERE p.project_id = %s
            """,
            [project.pk, OVERLAP, project.pk],
        )
        cursor.execute(
            """
            INSERT INTO annotation_comparisonresponse (comparison_id, response_id, position)
            SELECT c.id, r.id, CASE WHEN r.source_name = 'bench-a' THEN 0 ELSE 1 END
            FROM annotation_comparison c JOIN annotation_response r ON r.prompt_id = c.prompt_id
            WHERE c.project_id = %s
            """,
            [project.pk],
        )
        cursor.execute(
            """
            INSERT INTO annotation_judgement (comparison_id, annotator_id, choice, strength, rationale,
                duration_ms, display_order, left_response_id, created_at)
            SELECT c.id, (%s::bigint[])[1 + ((c.id + k * 7) %% %s)],
                   (ARRAY['a', 'b', 'a', 'b', 'a', 'tie', 'both_bad'])[1 + ((c.id * 7 + k) %% 7)],
                   (c.id + k) %% 3,
                   CASE WHEN (c.id + k) %% 5 = 0 THEN 'Clearer and more complete.' ELSE '' END,
                   1000 + ((c.id * 13 + k * 17) %% 20000),
                   CASE WHEN (c.id + k) %% 2 = 0 THEN '[0, 1]'::jsonb ELSE '[1, 0]'::jsonb END,
                   CASE WHEN (c.id + k) %% 2 = 0 THEN ra.response_id ELSE rb.response_id END,
                   now() - ((c.id %% 10000) || ' minutes')::interval
            FROM annotation_comparison c
            JOIN annotation_comparisonresponse ra ON ra.comparison_id = c.id AND ra.position = 0
            JOIN annotation_comparisonresponse rb ON rb.comparison_id = c.id AND rb.position = 1
            CROSS JOIN generate_series(0, %s) AS k
            WHERE c.project_id = %s
            ORDER BY c.id, k
            LIMIT %s
            """,
            [user_ids, ANNOTATORS, OVERLAP - 1, project.pk, rows],
        )
        cursor.execute("ANALYZE")


def measure(fmt: str) -> dict:
    """Run one export in this (fresh) process and report speed and peak memory."""
    from annotation.models import Judgement, Project
    from annotation.services.exports import ExportOptions, export_to_path

    project = Project.objects.get(slug=SLUG)
    judgements = Judgement.objects.filter(comparison__project=project).count()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"export.{fmt}"
        started = time.perf_counter()
        written, sha256 = export_to_path(project=project, options=ExportOptions(format=fmt), path=path)
        seconds = time.perf_counter() - started
        size = path.stat().st_size
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kb = usage.ru_maxrss  # kilobytes on Linux
    return {
        "judgements": judgements,
        "rows_written": written,
        "bytes": size,
        "seconds": round(seconds, 3),
        "judgements_per_s": round(judgements / seconds),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        # CPU of this process (startup included): the rest of ``seconds`` is waiting for PostgreSQL.
        "process_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "sha256": sha256,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="Judgements to seed.")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), help="Scratch database."
    )
    parser.add_argument("--formats", default="trl,votes")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: run one format in this process
    args = parser.parse_args()

    if args.measure:
        django_setup(args.database_url)
        print(json.dumps(measure(args.measure)))
        return
    if args.rows < 1:
        raise SystemExit("--rows must be at least 1.")
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("The benchmark needs PostgreSQL: give --database-url postgres://...")

    recreate_database(args.database_url)
    try:
        django_setup(args.database_url)
        started = time.perf_counter()
        seed(args.rows)
        seed_seconds = time.perf_counter() - started
        from django.db import connections

        connections.close_all()
        results = {}
        for fmt in args.formats.split(","):
            child = subprocess.run(
                [sys.executable, __file__, "--measure", fmt, "--database-url", args.database_url],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ},
            )
            if child.returncode != 0:
                raise SystemExit(f"Exporting {fmt} failed:\n{child.stderr[-4000:]}")
            results[fmt] = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            recreate_database(args.database_url, drop_only=True)
    print(
        json.dumps(
            {
                "rows": args.rows,
                "seed_seconds": round(seed_seconds, 1),
                "formats": results,
                "target": {"judgements_per_s": 100_000, "peak_rss_mb": 300},
            }
        )
    )


if __name__ == "__main__":
    main()
