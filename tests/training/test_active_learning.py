"""The active scorer orders the annotation queue: most uncertain first, or random."""

import pytest

from tests.factories import ComparisonFactory
from training.models import LoopSettings
from training.services.active_learning import comparisons_prioritise, uncertainty_priority

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("p, priority", [(0.5, 1.0), (0.0, 0.0), (1.0, 0.0), (0.75, 0.5), (0.1, 0.2)])
def test_uncertainty_is_one_minus_twice_the_distance_from_a_coin_flip(p, priority):
    assert uncertainty_priority(p) == pytest.approx(priority)


def test_the_most_uncertain_comparison_gets_the_highest_priority(project):
    sure = ComparisonFactory.create_pair(project=project, texts=("great", "awful"))
    unsure = ComparisonFactory.create_pair(project=project, texts=("fine", "okay"))
    done = ComparisonFactory.create_pair(project=project, texts=("x", "y"), open_slots=0)
    gold = ComparisonFactory.create_pair(project=project, texts=("g", "h"), is_gold=True, gold_choice="a")
    probabilities = {"great": 0.95, "fine": 0.55}

    updated = comparisons_prioritise(
        project=project, prob_first_better=lambda messages, a, b: probabilities[a], order="uncertainty"
    )
    assert updated == 2
    for c in (sure, unsure, done, gold):
        c.refresh_from_db()
    assert unsure.priority == pytest.approx(0.9) and sure.priority == pytest.approx(0.1)
    assert done.priority == 0.0 and gold.priority == 0.0


def test_random_order_is_the_project_setting_and_needs_no_scorer(project):
    LoopSettings.objects.create(project=project, queue_order="random")
    comparisons = [ComparisonFactory.create_pair(project=project, texts=(f"a{i}", f"b{i}")) for i in range(5)]
    comparisons_prioritise(project=project, prob_first_better=lambda *args: 1 / 0, seed=1)
    priorities = [c.priority for c in (type(c).objects.get(pk=c.pk) for c in comparisons)]
    assert len(set(priorities)) == 5 and all(0 <= p < 1 for p in priorities)
