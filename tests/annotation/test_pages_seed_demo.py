"""``manage.py seed_demo``: demo users with passwords printed once, the demo project and its items."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from annotation.models import Comparison, ImportBatch, Membership, Project, Prompt

pytestmark = pytest.mark.django_db

USERNAMES = ("admin", "researcher", "annotator1", "annotator2")


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        match = re.match(r"^\s+(\S+)\s+(admin|researcher|annotator)\s+(\S+)$", line)
        if match:
            found[match.group(1)] = match.group(3)
    return found


def test_it_creates_the_users_the_project_and_comparisons():
    output = seed()

    project = Project.objects.get(slug="demo")
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {
        "admin": "admin",
        "researcher": "researcher",
        "annotator1": "annotator",
        "annotator2": "annotator",
    }
    assert get_user_model().objects.get(username="admin").is_superuser
    trained_on = Prompt.objects.filter(project=project, held_back=False)
    assert 20 <= trained_on.count() <= 40
    comparisons = Comparison.objects.filter(project=project)
    assert comparisons.count() == trained_on.count()
    assert all(c.open_slots == project.overlap == 2 for c in comparisons)
    assert all(c.slots.count() == 2 for c in comparisons)
    assert "Imported comparisons.jsonl" in output


def test_it_prints_each_new_users_random_password_once_and_it_works():
    passwords = printed_passwords(seed())

    assert set(passwords) == set(USERNAMES)
    assert len(set(passwords.values())) == 4
    for username, password in passwords.items():
        assert get_user_model().objects.get(username=username).check_password(password)


def test_running_it_again_changes_nothing():
    first = printed_passwords(seed())
    counts = (Prompt.objects.count(), Comparison.objects.count(), ImportBatch.objects.count())

    output = seed()

    assert (Prompt.objects.count(), Comparison.objects.count(), ImportBatch.objects.count()) == counts
    assert printed_passwords(output) == {}  # nothing new to print
    assert "unchanged" in output
    assert get_user_model().objects.filter(username__in=USERNAMES).count() == 4
    for username, password in first.items():
        assert get_user_model().objects.get(username=username).check_password(password)


def test_reset_passwords_gives_new_ones_and_prints_them():
    first = printed_passwords(seed())

    second = printed_passwords(seed("--reset-passwords"))

    assert set(second) == set(USERNAMES)
    for username in USERNAMES:
        assert second[username] != first[username]
        user = get_user_model().objects.get(username=username)
        assert user.check_password(second[username])
        assert not user.check_password(first[username])


def test_the_demo_responses_hide_nothing_from_researchers_but_name_their_source():
    seed()
    sources = set(
        Comparison.objects.filter(project__slug="demo").values_list("slots__response__source_name", flat=True)
    )
    assert sources == {"demo-careful", "demo-hasty"}


def test_it_holds_back_prompts_with_no_comparisons_for_the_tuned_policy_to_answer():
    output = seed()

    held_back = Prompt.objects.filter(project__slug="demo", held_back=True)
    assert held_back.count() == 8
    assert not Comparison.objects.filter(prompt__in=held_back).exists()  # never training data
    assert all(len(p.messages) == 1 and p.messages[0]["role"] == "user" for p in held_back)
    assert "Held back 8 prompts" in output

    again = seed()

    assert Prompt.objects.filter(project__slug="demo", held_back=True).count() == 8
    assert "Held back" not in again


def test_a_demo_admin_promoting_a_policy_queues_generation_on_the_held_back_prompts():
    from training.models import ModelVersion
    from training.services.registry import version_promote

    seed()
    project = Project.objects.get(slug="demo")
    policy = ModelVersion.objects.create(
        project=project, name="tuned", kind="policy", base_model="smollm2-135m"
    )

    version_promote(version=policy, status="serving")

    job = policy.generation_jobs.get()
    assert job.held_back_only and job.prompts_total == 8
