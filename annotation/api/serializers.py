"""Shapes of the API's requests and answers.

The hot endpoints (next, judgement) build their answers with the small functions at the bottom,
which are cheaper than DRF serialisation; the serializer classes describe the same shapes for the
OpenAPI schema, and ``tests/annotation/test_api.py`` checks the two agree.
"""

from functools import lru_cache

from rest_framework import serializers

from annotation.models import Assignment, Choice, Comparison, ComparisonResponse, Judgement, Project, Role
from annotation.parsing import is_plain_int
from annotation.rendering import render_markdown
from annotation.services.judgements import SHOWN_CHOICES

# Pairs are shown left/right; a ranking of 3+ responses would name its extra slots by number.
SIDES = ("left", "right")


@lru_cache(maxsize=8192)
def markdown_html(text: str) -> str:
    """Rendering is pure and the same response is shown to ``overlap`` annotators: cache it."""
    return render_markdown(text)


# --- Projects ------------------------------------------------------------------------------------


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="Your role in this project.")
    guidelines_html = serializers.SerializerMethodField(help_text="The guidelines, rendered and sanitised.")

    class Meta:
        model = Project
        fields = [
            "slug",
            "name",
            "role",
            "guidelines",
            "guidelines_html",
            "allow_tie",
            "allow_both_bad",
            "strength_scale",
            "rationale",
            "overlap",
            "lease_seconds",
        ]

    def get_role(self, project: Project) -> str:
        return self.context["roles"][project.pk]

    def get_guidelines_html(self, project: Project) -> str:
        return markdown_html(project.guidelines)


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Your judgements in this project.")
    left = serializers.IntegerField(help_text="Items you could still be served, including the one you hold.")
    total = serializers.IntegerField(help_text="done + left.")
    left_capped = serializers.BooleanField(help_text="True when 'left' stopped counting at its cap.")


class MemberCountSerializer(serializers.Serializer):
    username = serializers.CharField()
    judgements = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    prompts = serializers.IntegerField()
    comparisons = serializers.IntegerField()
    completed = serializers.IntegerField(help_text="Comparisons with at least `overlap` judgements.")
    gold = serializers.IntegerField()
    with_prior = serializers.IntegerField(help_text="Comparisons that came with an imported label.")
    judgements = serializers.IntegerField()
    live_leases = serializers.IntegerField()
    overlap = serializers.IntegerField()
    per_annotator = MemberCountSerializer(many=True)


# --- The queue -----------------------------------------------------------------------------------


class ShownMessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()
    html = serializers.CharField(help_text="content rendered as sanitised Markdown.")


class ShownPromptSerializer(serializers.Serializer):
    messages = ShownMessageSerializer(many=True)


class ShownResponseSerializer(serializers.Serializer):
    side = serializers.CharField(help_text='"left" or "right".')
    text = serializers.CharField()
    html = serializers.CharField(help_text="text rendered as sanitised Markdown.")


class AssignmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    prompt = ShownPromptSerializer()
    responses = ShownResponseSerializer(many=True)


class NextSerializer(serializers.Serializer):
    assignment = AssignmentSerializer()
    progress = ProgressSerializer()


class JudgementInputSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=SHOWN_CHOICES, help_text="In display terms.")
    strength = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Index into the project's strength scale."
    )
    rationale = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=True)
    duration_ms = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0)


class JudgementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    assignment = serializers.IntegerField()
    choice_shown = serializers.ChoiceField(
        choices=SHOWN_CHOICES, help_text="What you chose, in display terms."
    )
    choice = serializers.ChoiceField(
        choices=Choice.choices, help_text="The same choice in canonical positions."
    )
    strength = serializers.IntegerField(allow_null=True)
    rationale = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class SkipSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class ErrorsSerializer(serializers.Serializer):
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


# --- Comparisons, for researchers ----------------------------------------------------------------


class SlotSerializer(serializers.ModelSerializer):
    response_id = serializers.IntegerField(source="response.id")
    text = serializers.CharField(source="response.text")
    source_name = serializers.CharField(source="response.source_name")
    model_version = serializers.CharField(source="response.model_version_name")

    class Meta:
        model = ComparisonResponse
        fields = ["position", "response_id", "text", "source_name", "model_version"]


class ComparisonSerializer(serializers.ModelSerializer):
    prompt = serializers.JSONField(
        source="prompt.messages", help_text="The conversation: {role, content} turns."
    )
    prompt_id = serializers.IntegerField()
    responses = SlotSerializer(source="slots", many=True)

    class Meta:
        model = Comparison
        fields = [
            "id",
            "prompt_id",
            "prompt",
            "responses",
            "open_slots",
            "judgement_count",
            "priority",
            "prior_choice",
            "prior_source",
            "is_gold",
            "gold_choice",
            "created_at",
        ]


# --- Members -------------------------------------------------------------------------------------


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class MemberSetSerializer(MemberSerializer):
    email = serializers.EmailField(
        required=False,
        default="",
        write_only=True,
        help_text="The email address of the account, needed to add someone who is not a member yet "
        "(not to change a member's role). A username and address that match no account are refused "
        "with the same message whether the username exists or not.",
    )


# --- Cheap builders for the hot path -------------------------------------------------------------


def assignment_payload(assignment: Assignment) -> dict:
    """What an annotator sees: the conversation and the responses by side, nothing that identifies
    a response (no ids, model names or sources). Takes an assignment from
    ``comparison_next_for_annotator`` (``comparison.prompt`` and ``shown_responses`` loaded)."""
    responses = []
    for index, response in enumerate(assignment.shown_responses):
        side = SIDES[index] if index < len(SIDES) else str(index + 1)
        responses.append({"side": side, "text": response.text, "html": markdown_html(response.text)})
    messages = []
    for turn in assignment.comparison.prompt.messages:
        content = turn.get("content", "")
        messages.append(
            {"role": turn.get("role", "user"), "content": content, "html": markdown_html(content)}
        )
    return {
        "id": assignment.pk,
        "expires_at": assignment.expires_at.isoformat().replace("+00:00", "Z"),
        "prompt": {"messages": messages},
        "responses": responses,
    }


def judgement_input_as_sent(data) -> dict | None:
    """The judgement input, when it is already exactly what ``JudgementInputSerializer`` would
    return (the common case: a JSON body from the annotator page); None means "run the serializer",
    which coerces what it can and names what it cannot. Building the serializer (it deep-copies
    its fields) was a quarter of the judgement view's CPU time (cProfile, annotation bench).
    """
    if type(data) is not dict:  # a parsed JSON object; forms go through the serializer
        return None
    choice = data.get("choice")
    strength = data.get("strength")
    rationale = data.get("rationale", "")
    duration_ms = data.get("duration_ms")
    if (
        not isinstance(choice, str)
        or choice not in SHOWN_CHOICES
        or not (strength is None or is_plain_int(strength))
        or not isinstance(rationale, str)
        or not (duration_ms is None or (is_plain_int(duration_ms) and duration_ms >= 0))
    ):
        return None
    if "\x00" in rationale or not _encodable(rationale):
        return None  # the serializer refuses null and lone surrogate characters, with a message
    # The serializer's CharField trims whitespace.
    return {
        "choice": choice,
        "strength": strength,
        "rationale": rationale.strip(),
        "duration_ms": duration_ms,
    }


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def judgement_payload(judgement: Judgement) -> dict:
    return {
        "id": judgement.pk,
        "assignment": judgement.assignment_id,
        "choice_shown": choice_shown(judgement),
        "choice": judgement.choice,
        "strength": judgement.strength,
        "rationale": judgement.rationale,
        "duration_ms": judgement.duration_ms,
        "created_at": judgement.created_at.isoformat().replace("+00:00", "Z"),
    }


def choice_shown(judgement: Judgement) -> str:
    """The canonical choice back in the terms the annotator saw it."""
    if judgement.choice in (Choice.TIE, Choice.BOTH_BAD):
        return judgement.choice
    position = 0 if judgement.choice == Choice.A else 1
    return "left" if judgement.display_order[0] == position else "right"
