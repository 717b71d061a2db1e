"""The Content-Security-Policy in a real Chromium: it is enforced, and our pages, the API docs and
the Django admin all work under it without a single refusal."""

import pytest
from playwright.sync_api import expect

from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


def log_in(page, live_server, username: str, next_path: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_chromium_refuses_an_inline_script_under_our_policy_and_the_listener_hears_it(
    live_server, page, csp_violations
):
    """The check the other browser tests rely on: a page with our header and an inline script."""
    header = page.request.get(f"{live_server.url}/accounts/login/").headers["content-security-policy"]
    probe = f"{live_server.url}/csp-probe/"
    page.route(
        probe,
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            headers={"Content-Security-Policy": header},
            body="<p id=p>probe</p><script>window.ran = true</script><p style='color: red'>styled</p>",
        ),
    )

    page.goto(probe)
    page.locator("#p").wait_for()

    assert page.evaluate("window.ran === undefined")
    assert any("script" in text for text in csp_violations)
    assert any("style" in text for text in csp_violations)


def test_the_api_docs_render_under_the_policy(live_server, page, csp_violations):
    user = UserFactory(username="dora")
    log_in(page, live_server, user.username, "/api/docs/")

    # Swagger UI has started (bundle and start-up script ran) and drawn the schema's operations.
    expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    assert page.locator(".opblock").count() > 10
    assert csp_violations == []


def test_the_admin_works_under_the_policy(live_server, page, csp_violations):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    project = ProjectFactory(name="Admin Trial")
    log_in(page, live_server, "root", "/admin/")
    expect(page.locator("#site-name")).to_be_visible()

    page.goto(f"{live_server.url}/admin/annotation/project/")
    expect(page.get_by_role("link", name=project.slug)).to_be_visible()
    page.goto(f"{live_server.url}/admin/annotation/project/{project.pk}/change/")
    # The inline formset's "Add another" link is made by the admin's own script.
    expect(page.locator(".add-row a").first).to_be_visible()
    page.locator(".add-row a").first.click()
    expect(page.locator("#memberships-group tr.dynamic-memberships")).to_have_count(2)
    assert csp_violations == []


def test_the_project_and_training_pages_run_under_the_policy(live_server, page, csp_violations):
    project = ProjectFactory(name="Pages Trial")
    MembershipFactory(project=project, user__username="ada", role="admin")
    ComparisonFactory.create_pair(project=project, texts=("One **reply**.", "Another reply."))
    log_in(page, live_server, "ada", "/")
    page.get_by_role("link", name="Pages Trial").first.wait_for()

    for path in (
        f"/projects/{project.slug}/",
        f"/projects/{project.slug}/dashboard/",
        f"/projects/{project.slug}/import/",
        f"/training/{project.slug}/runs/",
        f"/training/{project.slug}/leaderboard/",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        page.wait_for_load_state("load")

    assert csp_violations == []
