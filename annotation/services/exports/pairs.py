"""``export_pairs``: the selected comparisons of a project as format-neutral ``Pair`` records."""

from collections.abc import Iterator

from django.contrib.auth import get_user_model

from annotation.exporters import Pair, Vote
from annotation.models import Judgement, Project
from annotation.services.exports.options import ExportOptions
from annotation.services.exports.pseudonyms import pseudonym
from annotation.sides import side_of
from annotation.votes import COMPARISON_FIELDS, SelectedComparison, select_votes

_A_RESPONSE = COMPARISON_FIELDS.index("slot_a__response_id")


def export_pairs(*, project: Project, options: ExportOptions, fast: bool = True) -> Iterator[Pair]:
    """The filtered, aggregated comparisons of ``project`` in comparison id order, streamed.

    ``fast`` picks the row source (COPY, or two cursors with ``fast=False``); both give the same
    pairs. Run it inside a transaction (``export_write`` does) so every read sees one snapshot.
    """
    names = _AnnotatorNames(project=project, pseudonymise=options.pseudonymise)
    selected = select_votes(project=project, filters=options.vote_filters, fast=fast)
    for comparison in selected:
        yield _pair(comparison, _votes(comparison, names))


class _AnnotatorNames(dict):
    """``{annotator id: name in the export}``: usernames when asked, else pseudonyms made on first
    use (a dict subclass, so the lookup once per vote stays a plain dict lookup)."""

    def __init__(self, *, project: Project, pseudonymise: bool) -> None:
        super().__init__()
        self.project = project
        if not pseudonymise:
            users = get_user_model().objects.filter(
                pk__in=Judgement.objects.filter(comparison__project=project).values("annotator_id")
            )
            self.update({user.pk: user.get_username() for user in users})

    def __missing__(self, annotator_id: int) -> str:
        name = self[annotator_id] = pseudonym(project=self.project, annotator_id=annotator_id)
        return name


def _votes(selected: SelectedComparison, names: _AnnotatorNames) -> list[Vote]:
    """The comparison's selected judgements, then its imported label when it counts."""
    a_id = selected.comparison[_A_RESPONSE]
    votes = [
        Vote(
            judgement_id,
            names[annotator_id],
            choice,
            strength,
            rationale,
            duration_ms,
            side_of(left_id, a_id),
            at,
        )
        for (_, judgement_id, annotator_id, choice, strength, rationale, duration_ms, left_id, at) in (
            selected.judgements
        )
    ]
    if selected.imported:
        prior_choice, prior_source = selected.prior
        votes.append(
            Vote(
                judgement_id=None,
                annotator=None,
                choice=prior_choice,
                strength=None,
                rationale="",
                duration_ms=None,
                left=None,
                created_at=None,
                imported=True,
                source=prior_source,
            )
        )
    return votes


def _pair(selected: SelectedComparison, votes: list[Vote]) -> Pair:
    (
        comparison_id,
        prompt_id,
        messages,
        _a_id,
        text_a,
        text_b,
        version_a,
        source_a,
        version_b,
        source_b,
        _prior_choice,
        _prior_source,
        is_gold,
        gold_choice,
        _created,
    ) = selected.comparison
    return Pair(
        comparison_id=comparison_id,
        prompt_id=prompt_id,
        messages=messages,
        response_a=text_a,
        response_b=text_b,
        model_a=version_a or source_a,
        model_b=version_b or source_b,
        is_gold=is_gold,
        gold_choice=gold_choice,
        votes=votes,
        label=selected.label,
        agreement=selected.agreement,
    )
