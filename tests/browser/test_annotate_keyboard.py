"""An annotator logs in and judges three comparisons in a real Chromium with the keyboard only.

The database must then hold three judgements whose canonical choice matches the side that was
on screen: "left better" is stored as whichever canonical position was shown on the left.
"""

import pytest

from annotation.models import Assignment, AssignmentStatus, Choice, ComparisonResponse, Judgement
from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


@pytest.fixture
def setup(db):
    project = ProjectFactory(name="Keyboard Trial", rationale="optional")
    annotator = MembershipFactory(project=project, user__username="kim", role="annotator").user
    for n in range(3):
        ComparisonFactory.create_pair(
            project=project,
            texts=(
                f"Reply **alpha** to question {n}.",
                f"Reply *beta* to question {n}.\n\n```python\nprint({n})\n```",
            ),
        )
    return project, annotator


def held_assignment(annotator) -> Assignment:
    return Assignment.objects.get(annotator=annotator, status=AssignmentStatus.LEASED)


def canonical(assignment: Assignment, side: str) -> str:
    position = assignment.display_order[0 if side == "left" else 1]
    return Choice.A if position == 0 else Choice.B


def wait_for_item(page, done: int) -> None:
    """Wait until an item is on screen after ``done`` judgements (not the previous one, still up)."""
    # A function, not a bare expression: Playwright eval()s a bare one in the page, which the
    # Content-Security-Policy refuses (no 'unsafe-eval').
    page.wait_for_function(
        "(done) => document.getElementById('annotate').dataset.state === 'item'"
        " && document.getElementById('progress-done').textContent.trim() === String(done)",
        arg=done,
    )


def shown_left_text(page) -> str:  # Markdown rendered: "Reply **alpha**" shows as "Reply alpha"
    return page.locator("#response-left-body").inner_text().strip()


def test_an_annotator_judges_three_comparisons_with_the_keyboard(
    live_server, page, setup, artifacts, csp_violations
):
    project, annotator = setup

    # Log in and open the project from the home page, keyboard only.
    page.goto(f"{live_server.url}/accounts/login/?next=/")
    page.locator("#id_username").focus()
    page.keyboard.type("kim")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Annotate").wait_for()
    assert "Keyboard Trial" in page.content()
    page.screenshot(path=str(artifacts / "home-1280.png"))
    page.goto(f"{live_server.url}/projects/{project.slug}/annotate/")

    # --- Item 1: errors first, then "left is better", strength "clear" (W). -----------------
    wait_for_item(page, done=0)
    first = held_assignment(annotator)
    left_response = ComparisonResponse.objects.get(
        comparison=first.comparison, position=first.display_order[0]
    )
    # What is on the left on screen is the response the lease says is on the left.
    assert shown_left_text(page).splitlines()[0] == left_response.response.text.splitlines()[0].replace(
        "*", ""
    )
    assert (
        page.locator("#response-left-body strong, #response-left-body em").count() == 1
    )  # Markdown rendered
    page.screenshot(path=str(artifacts / "annotate-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts / "annotate-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.keyboard.press("Enter")  # nothing chosen yet
    assert "Choose first" in page.locator("#notice").inner_text()
    page.keyboard.press("g")
    assert page.locator("#guidelines").is_visible()
    page.keyboard.press("g")
    assert not page.locator("#guidelines").is_visible()

    page.keyboard.press("1")
    assert page.locator('button[data-choice="left"]').get_attribute("aria-pressed") == "true"
    page.keyboard.press("Enter")  # no strength yet: the project's scale asks for one
    assert "How much better" in page.locator("#notice").inner_text()
    page.keyboard.press("w")
    assert page.locator('button[data-strength="1"]').get_attribute("aria-pressed") == "true"
    page.screenshot(path=str(artifacts / "annotate-1280-chosen.png"), full_page=True)
    page.keyboard.press("Enter")

    # --- Item 2: "right is better" by arrow, strongest by Shift+3, with a rationale. --------
    wait_for_item(page, done=1)
    second = held_assignment(annotator)
    assert second.pk != first.pk
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+Digit3")
    page.keyboard.press("r")
    # Every letter here is also a shortcut; in the box they must stay text.
    page.keyboard.type("It is tested, 1 step shorter; xs 2 ties")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")

    # --- Item 3: a tie. ------------------------------------------------------------------
    wait_for_item(page, done=2)
    third = held_assignment(annotator)
    page.keyboard.press("t")
    page.keyboard.press("Enter")

    # The queue is now empty for this annotator, and the page says so.
    page.locator("#empty").wait_for(state="visible")
    page.screenshot(path=str(artifacts / "annotate-empty-1280.png"))
    assert page.locator("#progress-done").inner_text() == "3"
    assert page.locator("#progress-left").inner_text() == "0"

    judgements = {j.assignment_id: j for j in Judgement.objects.filter(annotator=annotator)}
    assert len(judgements) == 3

    one = judgements[first.pk]
    assert one.choice == canonical(first, "left")
    assert one.left_response_id == left_response.response_id
    assert one.display_order == first.display_order
    assert one.strength == 1
    assert one.rationale == ""
    assert one.duration_ms > 0

    two = judgements[second.pk]
    assert two.choice == canonical(second, "right")
    assert two.left_response_id == (
        ComparisonResponse.objects.get(
            comparison=second.comparison, position=second.display_order[0]
        ).response_id
    )
    assert two.strength == 2
    assert two.rationale == "It is tested, 1 step shorter; xs 2 ties"

    three = judgements[third.pk]
    assert three.choice == Choice.TIE
    assert three.strength is None

    assert (artifacts / "annotate-1280.png").stat().st_size > 0
    assert (artifacts / "annotate-390.png").stat().st_size > 0
    assert csp_violations == []  # the pages ran whole under the Content-Security-Policy


def test_a_required_rationale_is_asked_for_and_skip_moves_on(live_server, page, artifacts, csp_violations):
    project = ProjectFactory(rationale="required", allow_both_bad=False, strength_scale=[])
    annotator = MembershipFactory(project=project, user__username="lee", role="annotator").user
    for n in range(2):
        ComparisonFactory.create_pair(project=project, texts=(f"First {n}", f"Second {n}"))
    page.goto(f"{live_server.url}/accounts/login/?next=/projects/{project.slug}/annotate/")
    page.locator("#id_username").fill("lee")
    page.locator("#id_password").fill(PASSWORD)
    page.keyboard.press("Enter")

    wait_for_item(page, done=0)
    judged = held_assignment(annotator)
    page.keyboard.press("x")  # "both bad" is not offered in this project: nothing is chosen
    assert page.locator('button[aria-pressed="true"]').count() == 0
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    assert "asks for a rationale" in page.locator("#notice").inner_text()
    assert page.evaluate("document.activeElement.id") == "rationale"  # focus went where the fix is
    page.keyboard.type("Second is clearer.")
    page.keyboard.press("Control+Enter")  # submits from the box

    wait_for_item(page, done=1)
    skipped = held_assignment(annotator)
    page.keyboard.press("s")
    page.locator("#empty").wait_for(state="visible")

    judgement = Judgement.objects.get(annotator=annotator)
    assert judgement.assignment_id == judged.pk
    assert judgement.choice == canonical(judged, "right")
    assert judgement.rationale == "Second is clearer."
    assert judgement.strength is None
    skipped.refresh_from_db()
    assert skipped.status == AssignmentStatus.SKIPPED
    assert csp_violations == []
