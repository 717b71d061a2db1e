"""Create the demo: four users, one project, the comparisons in ``annotation/demo/`` and the
held-back prompts a tuned policy is judged on (they have no comparisons and never enter training
data, so promoting a tuned policy has something new to answer).

    python manage.py seed_demo                    # first run prints each new user's password once
    python manage.py seed_demo --reset-passwords  # new passwords for the demo users, printed once

Safe to run again: existing users keep their passwords, the project keeps its settings and the
import is skipped when the same file was already imported into it. Passwords are random per
machine; none is written in code or on disk.
"""

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.importers.base import prompt_hash
from annotation.models import ImportBatch, Membership, Project, Prompt, RationalePolicy, Role
from annotation.services.imports import preferences_import

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
COMPARISONS_FILE = DEMO_DIR / "comparisons.jsonl"
GUIDELINES_FILE = DEMO_DIR / "guidelines.md"
HELD_BACK_FILE = DEMO_DIR / "held_back_prompts.jsonl"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    superuser: bool = False


DEMO_USERS = (
    DemoUser("admin", Role.ADMIN, superuser=True),
    DemoUser("researcher", Role.RESEARCHER),
    DemoUser("annotator1", Role.ANNOTATOR),
    DemoUser("annotator2", Role.ANNOTATOR),
)


class Command(BaseCommand):
    help = "Create demo users (passwords printed once) and a demo project with comparisons to judge."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", default="demo", help="Slug of the demo project (default: demo).")
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Give the demo users new random passwords (printed once). Off by default.",
        )

    def handle(self, *args, project: str, reset_passwords: bool, **options) -> None:
        with transaction.atomic():
            passwords = self._users(reset_passwords=reset_passwords)
            demo, created = self._project(slug=project)
            batch = self._import(project=demo)
            held_back = self._held_back(project=demo)
        self._report(
            project=demo, project_created=created, batch=batch, held_back=held_back, passwords=passwords
        )

    def _users(self, *, reset_passwords: bool) -> dict[str, str | None]:
        """Create the demo users; returns each username's new password, or None if unchanged."""
        User = get_user_model()
        passwords: dict[str, str | None] = {}
        for spec in DEMO_USERS:
            user, created = User.objects.get_or_create(username=spec.username)
            password = None
            if created or reset_passwords:
                password = secrets.token_urlsafe(12)
                user.set_password(password)
            if spec.superuser:
                user.is_staff = user.is_superuser = True
            user.save()
            passwords[spec.username] = password
        return passwords

    def _project(self, *, slug: str) -> tuple[Project, bool]:
        project, created = Project.objects.get_or_create(
            slug=slug,
            defaults={
                "name": "Demo: helpful and harmless replies",
                "guidelines": GUIDELINES_FILE.read_text(encoding="utf-8"),
                "overlap": 2,  # both demo annotators judge every item, so agreement can be measured
                "rationale": RationalePolicy.OPTIONAL,
            },
        )
        User = get_user_model()
        for spec in DEMO_USERS:
            Membership.objects.update_or_create(
                project=project, user=User.objects.get(username=spec.username), defaults={"role": spec.role}
            )
        return project, created

    def _import(self, *, project: Project) -> ImportBatch | None:
        """Import the demo comparisons unless this very file is already in the project."""
        data = COMPARISONS_FILE.read_bytes()
        if ImportBatch.objects.filter(project=project, sha256=hashlib.sha256(data).hexdigest()).exists():
            return None
        researcher = get_user_model().objects.get(username="researcher")
        with COMPARISONS_FILE.open("rb") as file:
            return preferences_import(
                project=project, fmt="responses", file=file, filename=COMPARISONS_FILE.name, user=researcher
            )

    def _held_back(self, *, project: Project) -> int:
        """Add the held-back prompts that are not in the project yet; returns how many were added.

        They are written for this purpose (none is in the comparisons file), so nothing judged
        here ever shares a prompt with what the tuned policy is later judged on."""
        added = 0
        for number, line in enumerate(HELD_BACK_FILE.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            text = json.loads(line).get("prompt")
            if not isinstance(text, str) or not text.strip():
                raise CommandError(f"{HELD_BACK_FILE.name} line {number}: needs a non-empty 'prompt' string.")
            messages = [{"role": "user", "content": text}]
            prompt, created = Prompt.objects.get_or_create(
                project=project,
                content_hash=prompt_hash(messages),
                defaults={"messages": messages, "source": f"demo:{HELD_BACK_FILE.name}", "held_back": True},
            )
            if not created and not prompt.held_back:
                raise CommandError(f"Held-back prompt {number} is already a training prompt in the project.")
            added += created
        return added

    def _report(
        self,
        *,
        project: Project,
        project_created: bool,
        batch: ImportBatch | None,
        held_back: int,
        passwords: dict,
    ) -> None:
        out = self.stdout
        verb = "Created" if project_created else "Kept"
        out.write(f"{verb} project '{project.slug}' ({project.name}).")
        if batch is None:
            out.write("Demo comparisons already imported; nothing new.")
        else:
            counts = ", ".join(
                f"{batch.created.get(k, 0)} {k}" for k in ("prompts", "responses", "comparisons")
            )
            out.write(f"Imported {COMPARISONS_FILE.name}: {counts}.")
        if held_back:
            out.write(f"Held back {held_back} prompts for judging tuned policies ({HELD_BACK_FILE.name}).")
        out.write("")
        out.write("Demo users (passwords are shown this once; they are not stored anywhere readable):")
        width = max(len(spec.username) for spec in DEMO_USERS)
        for spec in DEMO_USERS:
            password = passwords[spec.username]
            shown = password or "(unchanged; DEMO_RESET_PASSWORDS=1 make demo sets a new one)"
            out.write(f"  {spec.username.ljust(width)}  {spec.role.ljust(10)}  {shown}")
