"""Pseudonyms: an annotator's id in an export, stable per project, revealing nothing."""

import hashlib
import hmac

from django.conf import settings

from annotation.models import Project


def pseudonym(*, project: Project, annotator_id: int) -> str:
    """A stable id that does not reveal the user: HMAC-SHA256 of the project and user ids under
    SECRET_KEY, so the same annotator has different pseudonyms in different projects."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"{project.pk}:{annotator_id}".encode(), hashlib.sha256
    ).hexdigest()
    return f"anon-{digest[:16]}"
