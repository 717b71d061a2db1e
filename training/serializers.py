"""Shapes of the closed loop's API: one request serializer per endpoint that takes input, and the
answers (``training.selectors``' payloads) as the schema describes them.

The services own the rules (a run's kind and config, a version's kind, a promotion's status, the
queue order) and name the problem when a value breaks one; the request serializers check types
and describe the values, so a field the service checks passes its value through unchanged.
"""

from rest_framework import serializers

from alignweb.jobs import JobState
from annotation.api.errors import RequestSerializer
from training import selectors
from training.models import (
    EvaluationOpponent,
    EvaluationState,
    ModelKind,
    QueueOrder,
    RunKind,
    RunState,
    VersionStatus,
)

PROMOTIONS = [(status.value, status.label) for status in (VersionStatus.SERVING, VersionStatus.ACTIVE_SCORER)]

# --- Fields ---------------------------------------------------------------------------------------


class ServiceChoiceField(serializers.ChoiceField):
    """An enum in the schema; the service checks the value, and its message names the choices."""

    def to_internal_value(self, data) -> str:
        return str(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: a string such as "no" is refused rather than read."""

    def to_internal_value(self, data) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError(f"{self.field_name} must be true or false.")
        return data


class VersionField(serializers.IntegerField):
    """A model version of the request's project, by id (``context["project"]``); another
    project's version is a 404, as its URL would be."""

    default_error_messages = {"invalid": "Give the version's id."}

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("allow_null", True)
        if not kwargs.setdefault("required", False):
            kwargs.setdefault("default", None)
        super().__init__(**kwargs)

    def validate_empty_values(self, data):
        if data == "":
            return True, None
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return selectors.version_for_project(project=self.context["project"], version_id=data)

    def to_representation(self, value):
        return value.pk


def text(**kwargs) -> serializers.CharField:
    """An optional string, kept as sent (the services trim and check what they need)."""
    return serializers.CharField(
        required=False, default="", allow_blank=True, trim_whitespace=False, **kwargs
    )


# --- Requests -------------------------------------------------------------------------------------


class RunRequestSerializer(RequestSerializer):
    kind = ServiceChoiceField(choices=RunKind.choices, required=False, default="")
    config = serializers.DictField(
        required=False,
        default=dict,
        error_messages={"not_a_dict": "The config must be a JSON object."},
        help_text='The ML core\'s config for that kind, e.g. {"model": "minilm-l6", "max_steps": 50}. '
        "For rloo, ppo and soft_q the server sets reward_model to the project's active scorer; "
        "a config that names one is refused.",
    )
    filters = serializers.DictField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Which votes to train on: gold_checked_only, min_agreement, since, until, "
        "include_prior_labels, eval_fraction, max_examples.",
    )
    base_version = VersionField(help_text="The version to start from (id).")
    name = text()
    force = StrictBooleanField(
        required=False, default=False, help_text="Start next to an active run of the same kind."
    )
    promote_when_done = StrictBooleanField(
        required=False,
        default=False,
        help_text="On success, promote its version: a policy to serving, a reward model to active scorer.",
    )


class VersionRequestSerializer(RequestSerializer):
    name = text()
    kind = ServiceChoiceField(choices=ModelKind.choices, required=False, default=ModelKind.POLICY)
    base_model = text(help_text="A short name, hub id or path.")
    checkpoint_path = text()
    endpoint_url = text(help_text="An OpenAI-compatible endpoint (policies only).")
    endpoint_model = text(help_text="The model the endpoint serves.")
    api_key_env = text(
        write_only=True,
        help_text="The environment variable of the workers that holds the endpoint's API key, named by "
        "the operator (it must start with their prefix, ALIGNWEB_ENDPOINT_KEY_ by default). Never shown "
        "back. Empty: the global ALIGNWEB_ENDPOINT_API_KEY.",
    )
    parent = VersionField(help_text="The version this one derives from (id).")


class PromoteRequestSerializer(RequestSerializer):
    status = ServiceChoiceField(
        choices=PROMOTIONS,
        required=False,
        default="",
        help_text="serving (a policy; queues generation of new comparisons on held-back prompts) or "
        "active_scorer (a reward model; re-orders the pending queue).",
    )


class GenerationRequestSerializer(RequestSerializer):
    model_version = VersionField(
        required=True, error_messages={"required": "Name the model version to generate from."}
    )
    opponent = VersionField(help_text="Default: the imported responses.")
    k = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Responses per prompt."
    )
    params = serializers.DictField(
        required=False, allow_null=True, default=None, help_text="max_new_tokens, temperature, top_p, seed."
    )
    held_back_only = StrictBooleanField(required=False, default=True)
    prompt_limit = serializers.IntegerField(required=False, allow_null=True, default=None)

    def validate_model_version(self, version):
        if version is None:
            raise serializers.ValidationError("Name the model version to generate from.")
        return version


class LoopSettingsRequestSerializer(RequestSerializer):
    queue_order = ServiceChoiceField(
        choices=QueueOrder.choices,
        required=False,
        default="",
        help_text="uncertainty (most uncertain first by the active scorer), informative (most "
        "informative first: BALD under a Laplace posterior of the active scorer's head; a new "
        "project's default) or random.",
    )


# --- Answers --------------------------------------------------------------------------------------


class NamedVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SnapshotSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sha256 = serializers.CharField()
    filters = serializers.DictField()
    judgements = serializers.IntegerField()
    examples = serializers.IntegerField()


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=RunKind.choices)
    state = serializers.ChoiceField(choices=RunState.choices)
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField(allow_null=True)
    progress = serializers.FloatField(help_text="From 0 to 1.")
    eta_seconds = serializers.FloatField(allow_null=True)
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    resumed_from_step = serializers.IntegerField(allow_null=True)
    forced = serializers.BooleanField()
    promote_when_done = serializers.BooleanField()
    config = serializers.DictField(help_text="The normalised config, defaults filled in.")
    snapshot = SnapshotSummarySerializer()
    base_version = serializers.CharField(allow_null=True, help_text="Its name.")
    worker_id = serializers.CharField(allow_blank=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    checkpoint_path = serializers.CharField(allow_blank=True)
    versions = NamedVersionSerializer(many=True, help_text="The versions the run registered.")


class RunDetailSerializer(RunSerializer):
    series = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField()),
        help_text='{"train": [{"step": 1, "loss": ...}, ...], "eval": [...]}, each sorted by step.',
    )
    log_tail = serializers.CharField(allow_blank=True)


class VersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=ModelKind.choices)
    status = serializers.ChoiceField(choices=VersionStatus.choices)
    base_model = serializers.CharField(allow_blank=True)
    parent = serializers.CharField(allow_null=True, help_text="Its name.")
    run = serializers.IntegerField(allow_null=True, help_text="The run that trained it.")
    checkpoint_path = serializers.CharField(allow_blank=True)
    endpoint_url = serializers.CharField(allow_blank=True)
    endpoint_model = serializers.CharField(allow_blank=True)
    own_api_key = serializers.BooleanField(
        help_text="Whether the endpoint gets a key of its own rather than the global one (which "
        "variable holds it is never shown)."
    )
    lineage = serializers.DictField()
    metrics = serializers.DictField()
    created_at = serializers.DateTimeField()


class VersionEvaluationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = NamedVersionSerializer(help_text="The tuned policy.")
    opponent = NamedVersionSerializer(help_text="Its base, or the version that served before it.")
    opponent_role = serializers.ChoiceField(choices=EvaluationOpponent.choices)
    reference = serializers.CharField(allow_null=True, help_text="The version the KL is measured to.")
    judge = serializers.CharField(
        allow_blank=True, help_text="The reward model that judged (its name when the evaluation was queued)."
    )
    state = serializers.ChoiceField(choices=EvaluationState.choices)
    n_prompts = serializers.IntegerField(help_text="Held-back prompts evaluated on.")
    win_rate = serializers.FloatField(
        allow_null=True, help_text="Share of prompts the tuned reply wins in the judge's eyes, ties half."
    )
    ci_low = serializers.FloatField(allow_null=True, help_text="Bootstrap 95% interval of the win rate.")
    ci_high = serializers.FloatField(allow_null=True)
    wins = serializers.IntegerField(allow_null=True)
    ties = serializers.IntegerField(allow_null=True)
    losses = serializers.IntegerField(allow_null=True)
    mean_kl = serializers.FloatField(
        allow_null=True, help_text="KL(tuned || reference) per generated token, on the tuned replies."
    )
    mean_length_tuned = serializers.FloatField(allow_null=True, help_text="Generated tokens per reply.")
    mean_length_opponent = serializers.FloatField(allow_null=True)
    settings = serializers.DictField(help_text="max_new_tokens, temperature, top_p, seed.")
    error = serializers.CharField(allow_blank=True, help_text="Why it failed or was skipped.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class VersionDetailSerializer(VersionSerializer):
    ancestors = serializers.ListField(child=serializers.CharField(), help_text="Parent first.")
    evaluations = VersionEvaluationSerializer(
        many=True, help_text="Automatic evaluations against its base and the version that served before."
    )


class GenerationJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model_version = serializers.CharField(help_text="Its name.")
    opponent = serializers.CharField(help_text='A version\'s name, or "imported responses".')
    k = serializers.IntegerField()
    params = serializers.DictField()
    state = serializers.ChoiceField(choices=JobState.choices)
    prompts_done = serializers.IntegerField()
    prompts_total = serializers.IntegerField()
    responses_created = serializers.IntegerField()
    comparisons_created = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class LoopSettingsSerializer(serializers.Serializer):
    queue_order = serializers.ChoiceField(choices=QueueOrder.choices)
    responses_per_prompt = serializers.IntegerField()


class LeaderboardRowSerializer(serializers.Serializer):
    model = serializers.CharField()
    rating = serializers.FloatField(help_text="Elo scale.")
    ci_low = serializers.FloatField(help_text="Bootstrap 95% interval.")
    ci_high = serializers.FloatField()
    battles = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField()


class LeaderboardSerializer(serializers.Serializer):
    rows = LeaderboardRowSerializer(many=True, help_text="Best first.")
    models = serializers.ListField(child=serializers.CharField())
    win_rate = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="win_rate[i][j]: share of i-vs-j battles won by models[i] (ties count half).",
    )
    votes = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="votes[i][j]: battles between models[i] and models[j].",
    )
