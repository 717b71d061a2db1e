"""Shared fixtures: named users (an annotator, a researcher, an outsider), live services, and one
Playwright-driven Chromium for every test marked ``browser`` (one per session: a second sync
Playwright in the same process fails, so the fixtures live here, not in a sub-folder)."""

import os
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(name: str, available: bool) -> None:
    """Skip a test whose service is down on a laptop; in CI a missing service is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{name} is not reachable, and CI=true requires it.")
    pytest.skip(f"{name} is not reachable here.")


@pytest.fixture
def redis_url() -> str:
    import redis

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        available = True
    except redis.exceptions.RedisError:
        available = False
    require_service("Redis", available)
    return url


@pytest.fixture
def project(db):
    from tests.factories import ProjectFactory

    return ProjectFactory()


@pytest.fixture
def annotator(project):
    from tests.factories import MembershipFactory

    return MembershipFactory(project=project, user__username="annie", role="annotator").user


@pytest.fixture
def researcher(project):
    from tests.factories import MembershipFactory

    return MembershipFactory(project=project, user__username="rita", role="researcher").user


@pytest.fixture
def project_admin(project):
    from tests.factories import MembershipFactory

    return MembershipFactory(project=project, user__username="adam", role="admin").user


@pytest.fixture
def outsider(db):
    from tests.factories import UserFactory

    return UserFactory(username="olga")


# Browser tests: Playwright (sync API) driving Debian's Chromium.
# Playwright's own browser download needs network access we do not assume, so the tests use the
# system Chromium (scripts/ensure-chromium.sh; override the path with CHROMIUM_PATH). When it is
# missing they skip on a laptop and fail with CI=true.
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session")
def chromium():
    available = CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)
    require_service(f"Chromium ({CHROMIUM}; install it with scripts/ensure-chromium.sh)", available)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the ORM calls the test
    # makes between browser steps are still plain synchronous code, so Django may allow them.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def csp_violations(page) -> list[str]:
    """What Chromium refused on this page under the Content-Security-Policy, as it said it.

    Chromium reports each refusal (an inline script or style, an eval, a source from elsewhere) as
    a console error naming the policy; a test asserts the list is empty at its end.
    """
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return refused


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
