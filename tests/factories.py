"""Factories for test data. Build comparisons with ``ComparisonFactory.create_pair(...)``."""

import hashlib
import json

import factory
from django.contrib.auth import get_user_model

from annotation import models


def content_hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    # Hashed before the row is written: a post-generation set_password was never saved, so the
    # stored hash differed from the session's and force_login()/a real login did not hold.
    password = factory.django.Password("correct horse battery staple")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    guidelines = "Prefer the response that is **helpful** and harmless."


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = models.Role.ANNOTATOR


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Prompt

    project = factory.SubFactory(ProjectFactory)
    messages = factory.Sequence(lambda n: [{"role": "user", "content": f"Question number {n}?"}])
    content_hash = factory.LazyAttribute(lambda o: content_hash(o.messages))


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Response

    prompt = factory.SubFactory(PromptFactory)
    text = factory.Sequence(lambda n: f"Answer number {n}.")
    content_hash = factory.LazyAttribute(lambda o: content_hash(o.text))
    source_name = "factory"


class ComparisonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Comparison

    project = factory.SubFactory(ProjectFactory)
    prompt = factory.SubFactory(PromptFactory, project=factory.SelfAttribute("..project"))
    key = factory.Sequence(lambda n: f"{n:064d}")
    open_slots = factory.LazyAttribute(lambda o: o.project.overlap)

    @classmethod
    def create_pair(cls, *, project, texts=("Response A", "Response B"), **kwargs) -> models.Comparison:
        """A comparison of two fresh responses to a fresh prompt, A at position 0."""
        comparison = cls(project=project, **kwargs)
        for position, text in enumerate(texts):
            response = ResponseFactory(prompt=comparison.prompt, text=text)
            models.ComparisonResponse.objects.create(
                comparison=comparison, response=response, position=position
            )
        return comparison


def judgement(comparison, annotator, choice: str, *, left: str = "a", **kwargs) -> models.Judgement:
    """A judgement written straight to the database (the queue is not under test), shown with
    canonical side ``left`` on the left."""
    order = [0, 1] if left == "a" else [1, 0]
    left_response = comparison.slots.get(position=order[0]).response
    return models.Judgement.objects.create(
        comparison=comparison,
        annotator=annotator,
        choice=choice,
        display_order=order,
        left_response=left_response,
        **kwargs,
    )


def api_token_key(user, *, key: str | None = None, expires_at=None) -> str:
    """Store an API token for ``user`` (under ``key`` if given) and return its key."""
    from annotation.services.tokens import api_token_build
    from annotation.token_keys import key_digest, key_prefix

    token, new_key = api_token_build(user=user)
    if key is not None:
        token.digest, token.prefix, new_key = key_digest(key), key_prefix(key), key
    if expires_at is not None:
        token.expires_at = expires_at
    token.save()
    return new_key
