"""Shared fixtures: named users (an annotator, a researcher, an outsider) and live services."""

import os

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
