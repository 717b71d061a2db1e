"""Leaderboard benchmark: a project with N arena votes, its board fitted cold and then read cached.

    DATABASE_URL=postgres://... python bench/leaderboard_speed.py --battles 100000

The database at ``DATABASE_URL`` must be migrated. The bench creates its own project there (deleted
afterwards unless ``--keep``): 4 model versions, every pair of them on each prompt, and 20
annotators who each judge every comparison (``bulk_create`` through the app's models, so
``arena_battles`` reads them as it reads real votes). It times ``project_leaderboard`` once with its
cache entry deleted (the fit) and once more (the cache hit), and prints ONE JSON object with the
Python speed probe of ``annotation_load.py`` (lower is a faster machine).
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAYERS = ["base", "tuned-1", "tuned-2", "tuned-3"]
PAIRS = list(itertools.combinations(range(len(PLAYERS)), 2))
ANNOTATORS = 20
CHOICES = ["a", "b", "tie", "both_bad"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--battles", type=int, default=100_000, help="arena votes to create")
    parser.add_argument("--rounds", type=int, default=200, help="bootstrap rounds of the board")
    parser.add_argument("--keep", action="store_true", help="leave the bench's project in the database")
    return parser.parse_args(argv)


def setup_django() -> None:
    """Configure Django from the environment unless a caller (pytest) already has."""
    from django.apps import apps

    if apps.ready:
        return
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignweb.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(battles: int):
    """A project with ``battles`` votes on comparisons of two model versions' responses."""
    from django.contrib.auth import get_user_model

    from annotation.models import Comparison, ComparisonResponse, Judgement, Project, Prompt, Response

    tag = secrets.token_hex(4)
    project = Project.objects.create(
        slug=f"bench-board-{tag}", name="Leaderboard benchmark", overlap=ANNOTATORS
    )
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"board-{tag}-{i:02d}") for i in range(ANNOTATORS)]
    )
    comparisons_needed = -(-battles // ANNOTATORS)
    prompts_needed = -(-comparisons_needed // len(PAIRS))
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(
                project=project,
                messages=[{"role": "user", "content": f"Question {p}?"}],
                content_hash=f"p{p}",
            )
            for p in range(prompts_needed)
        ],
        batch_size=5000,
    )
    responses = Response.objects.bulk_create(
        [
            Response(
                prompt=prompt, text=f"{name} answers {p}.", content_hash=f"r{p}", model_version_name=name
            )
            for p, prompt in enumerate(prompts)
            for name in PLAYERS
        ],
        batch_size=5000,
    )
    pairs = [(p, pair) for p in range(prompts_needed) for pair in PAIRS][:comparisons_needed]
    comparisons = Comparison.objects.bulk_create(
        [Comparison(project=project, prompt=prompts[p], key=f"c{p}-{a}-{b}") for p, (a, b) in pairs],
        batch_size=5000,
    )
    sides = [(responses[p * len(PLAYERS) + a], responses[p * len(PLAYERS) + b]) for p, (a, b) in pairs]
    ComparisonResponse.objects.bulk_create(
        [
            ComparisonResponse(comparison=comparison, response=response, position=position)
            for comparison, pair in zip(comparisons, sides, strict=True)
            for position, response in enumerate(pair)
        ],
        batch_size=5000,
    )
    votes = []
    for k in range(battles):
        c, annotator = divmod(k, ANNOTATORS)
        a, b = pairs[c][1]
        # The better-ranked player (higher index) wins more often, so the board has an order to find.
        choice = CHOICES[(k * 7 + annotator) % 4] if (k % 3) else ("b" if b > a else "a")
        votes.append(
            Judgement(
                comparison=comparisons[c], annotator=users[annotator], choice=choice,
                display_order=[0, 1], left_response=sides[c][0],
            )
        )  # fmt: skip
    Judgement.objects.bulk_create(votes, batch_size=5000)
    return project, users


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    setup_django()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    from bench.annotation_load import python_speed_ms
    from bench.common import emit
    from training.selectors import arena_battles, leaderboard_cache_key, project_leaderboard

    speed_before = python_speed_ms()
    began = time.perf_counter()
    project, users = seed(args.battles)
    seed_s = time.perf_counter() - began
    try:
        cache.delete(leaderboard_cache_key(project=project, rounds=args.rounds))
        began = time.perf_counter()
        board = project_leaderboard(project=project, rounds=args.rounds)
        cold_s = time.perf_counter() - began
        began = time.perf_counter()
        again = project_leaderboard(project=project, rounds=args.rounds)
        cached_s = time.perf_counter() - began
        counted = sum(battle.count for battle in arena_battles(project=project))
    finally:
        if not args.keep:
            project.delete()
            get_user_model().objects.filter(pk__in=[user.pk for user in users]).delete()
    result = {
        "battles": counted,
        "cold_s": round(cold_s, 4),
        "cached_s": round(cached_s, 4),
        "speed_probe_ms": [speed_before, python_speed_ms()],
        "seed_s": round(seed_s, 2),
        "rounds": args.rounds,
        "players": len(PLAYERS),
        "cached_equals_cold": again == board,
    }
    emit(result)
    return result


if __name__ == "__main__":
    main()
