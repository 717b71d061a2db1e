"""``python manage.py import_preferences --project SLUG --format hh FILE``.

Exits non-zero and prints every reported problem (line, field, message) when the file is refused.
"""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.importers import FORMATS
from annotation.models import Project
from annotation.services.imports import ImportRejected, preferences_import


class Command(BaseCommand):
    help = "Import prompts, responses and comparisons into a project from a JSON Lines file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument(
            "--format",
            required=True,
            choices=sorted(FORMATS),
            help="; ".join(f"{name}: {FORMATS[name].help}" for name in sorted(FORMATS)),
        )
        parser.add_argument("--user", help="Username recorded as the importer (optional).")
        parser.add_argument("file", type=Path, help="JSON Lines (or one JSON array) file, UTF-8.")

    def handle(self, *args, project: str, format: str, user: str | None, file: Path, **options) -> None:
        try:
            target = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"No project with slug {project!r}.") from None
        importer = None
        if user:
            try:
                importer = get_user_model().objects.get(username=user)
            except get_user_model().DoesNotExist:
                raise CommandError(f"No user {user!r}.") from None
        if not file.is_file():
            raise CommandError(f"{file} is not a file.")
        with file.open("rb") as handle:
            try:
                batch = preferences_import(
                    project=target, fmt=format, file=handle, filename=file.name, user=importer
                )
            except ImportRejected as error:
                for problem in error.problems:
                    self.stderr.write(f"{file.name}: {problem}")
                raise CommandError(error.message) from None
        counts = batch.created
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {file.name} into {target.slug}: {batch.rows} rows, {counts['prompts']} new "
                f"prompts, {counts['responses']} new responses, {counts['comparisons']} new comparisons, "
                f"{counts['skipped']} skipped."
            )
        )
        for title, key in (("Skipped", "skipped_reasons"), ("Note", "notes")):
            for reason, info in counts.get(key, {}).items():
                lines = ", ".join(str(n) for n in info["lines"])
                more = ", ..." if info["count"] > len(info["lines"]) else ""
                self.stdout.write(f"{title}: {info['count']} x {reason} (lines {lines}{more})")
