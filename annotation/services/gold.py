"""Gold items: researchers mark comparisons whose right answer they know.

The queue serves gold comparisons at ``Project.gold_rate`` and they look like any other item;
``annotation.quality.gold`` scores annotators on them.
"""

from django.db import transaction

from annotation.models import Choice, Comparison
from annotation.parsing import parse_fraction
from annotation.services.errors import ValidationFailed


@transaction.atomic
def comparison_gold_set(*, comparison: Comparison, gold_choice: str | None) -> Comparison:
    """Mark ``comparison`` as gold with the known answer ``gold_choice`` (canonical a/b/tie/
    both_bad), or unmark it with None or "". The answer must be one the project lets annotators
    give, or nobody could ever be right."""
    comparison = Comparison.objects.select_for_update().select_related("project").get(pk=comparison.pk)
    project = comparison.project
    if gold_choice in (None, ""):
        comparison.is_gold = False
        comparison.gold_choice = ""
    else:
        if gold_choice not in Choice.values:
            raise ValidationFailed(
                f"gold_choice must be one of {', '.join(Choice.values)}; got {gold_choice!r}.",
                field="gold_choice",
            )
        if gold_choice == Choice.TIE and not project.allow_tie:
            raise ValidationFailed("This project does not allow ties.", field="gold_choice")
        if gold_choice == Choice.BOTH_BAD and not project.allow_both_bad:
            raise ValidationFailed("This project does not allow 'both bad'.", field="gold_choice")
        if comparison.slots.count() != 2:
            raise ValidationFailed("Only comparisons of two responses can be gold.", field="gold_choice")
        comparison.is_gold = True
        comparison.gold_choice = gold_choice
    comparison.save(update_fields=["is_gold", "gold_choice"])
    return comparison


@transaction.atomic
def project_gold_settings_update(*, project, gold_rate, gold_accuracy_threshold):
    """Set how often gold items are served (0 to 1) and the accuracy below which annotators are
    flagged (0 to 1). Values may come as text from a form."""
    values = {
        name: parse_fraction(raw, name=name)
        for name, raw in (("gold_rate", gold_rate), ("gold_accuracy_threshold", gold_accuracy_threshold))
    }
    project.gold_rate = values["gold_rate"]
    project.gold_accuracy_threshold = values["gold_accuracy_threshold"]
    project.save(update_fields=["gold_rate", "gold_accuracy_threshold"])
    return project
