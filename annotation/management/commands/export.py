"""``python manage.py export --project SLUG --format FORMAT --out FILE [filters]``

Writes the export straight to FILE (atomically) and records it as an Export row with its
options, row count and sha256, like exports made from the UI or the API.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from alignweb.jobs import JobState
from annotation.exporters import available_formats
from annotation.models import Project
from annotation.services.errors import ServiceError
from annotation.services.export_jobs import export_to_file
from annotation.services.exports import AGGREGATIONS, TIE_POLICIES, ExportOptions


class Command(BaseCommand):
    help = "Export a project's preference data (trl, votes, hh, csv, parquet) to a file."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--format", required=True, choices=available_formats())
        parser.add_argument("--out", required=True, help="The file to write (replaced atomically).")
        parser.add_argument("--aggregation", choices=AGGREGATIONS, default="majority")
        parser.add_argument("--ties", choices=TIE_POLICIES, default="exclude", help="Pair formats only.")
        layout = parser.add_mutually_exclusive_group()
        layout.add_argument(
            "--conversational",
            dest="conversational",
            action="store_true",
            default=True,
            help="trl: chat messages (the default).",
        )
        layout.add_argument(
            "--plain",
            dest="conversational",
            action="store_false",
            help='trl: text in the HH layout, the prompt ending with "\\n\\nAssistant:".',
        )
        parser.add_argument("--no-imported", action="store_true", help="Leave imported labels out.")
        parser.add_argument("--real-annotators", action="store_true", help="Usernames, not pseudonyms.")
        parser.add_argument("--from", dest="date_from", help="First day of judgements (YYYY-MM-DD).")
        parser.add_argument("--to", dest="date_to", help="Last day of judgements (YYYY-MM-DD).")
        parser.add_argument("--annotator", action="append", default=[], help="Only this username (repeat).")
        parser.add_argument("--model-version", action="append", default=[], help="A model version (repeat).")
        parser.add_argument("--min-gold-accuracy", help="Leave out annotators below this gold accuracy.")
        parser.add_argument("--exclude-flagged", action="store_true", help="Leave out flagged annotators.")
        parser.add_argument("--min-agreement", help="Leave out comparisons with less agreement.")
        parser.add_argument("--min-votes", help="Leave out comparisons with fewer votes.")

    def handle(self, *args, **opts) -> None:
        try:
            project = Project.objects.get(slug=opts["project"])
        except Project.DoesNotExist:
            raise CommandError(f"No project with slug {opts['project']!r}.") from None
        data = {
            "format": opts["format"],
            "aggregation": opts["aggregation"],
            "ties": opts["ties"],
            "conversational": opts["conversational"],
            "include_imported": not opts["no_imported"],
            "pseudonymise": not opts["real_annotators"],
            "exclude_flagged": opts["exclude_flagged"],
            "annotators": opts["annotator"],
            "model_versions": opts["model_version"],
        }
        for name in ("date_from", "date_to", "min_gold_accuracy", "min_agreement", "min_votes"):
            if opts[name] is not None:
                data[name] = opts[name]
        try:
            options = ExportOptions.from_dict(data)
        except ServiceError as error:
            flag = "--" + (error.field or "").replace("_", "-")
            raise CommandError(f"{flag}: {error.message}") from None
        out = Path(opts["out"])
        if out.is_dir():
            raise CommandError(f"--out {out} is a directory; give a file name.")
        if not out.parent.exists():
            raise CommandError(f"--out: the directory {out.parent} does not exist.")
        export = export_to_file(project=project, options=options, path=out)
        if export.state != JobState.SUCCEEDED:
            raise CommandError(
                f"Export {export.pk} was not recorded as written: {export.state}. {export.error}"
            )
        self.stdout.write(f"Wrote {export.rows} rows to {out} (sha256 {export.sha256}, export {export.pk}).")
