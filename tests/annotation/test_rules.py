"""The rules exports, snapshots and the quality report share: each defined once, pure."""

import pytest

from annotation.parsing import parse_bool, parse_fraction, parse_names, parse_positive_int
from annotation.quality.aggregation import aggregate, enough_votes
from annotation.quality.gold import FLAGGED, TRUSTED, UNTESTED, GoldRecord
from annotation.services.errors import ValidationFailed
from annotation.sides import choice_for_position, chosen_rejected, shown_choice, side_of


def test_gold_items_vouch_only_after_enough_of_them():
    assert GoldRecord(seen=2, correct=0).verdict(0.5) == UNTESTED
    assert GoldRecord(seen=3, correct=1).verdict(0.5) == FLAGGED
    assert GoldRecord(seen=3, correct=2).verdict(2 / 3) == TRUSTED  # exactly at the threshold
    assert GoldRecord(seen=1, correct=1).verdict(0.5, min_judgements=1) == TRUSTED


@pytest.mark.parametrize(
    "choices, method, weights, expected",
    [
        (["a", "a", "b"], "majority", None, ("a", 2 / 3)),
        (["a", "b"], "majority", None, (None, 0.5)),
        (["tie", "tie"], "majority", None, ("tie", 1.0)),
        (["a", "a", "b"], "unanimous", None, (None, 2 / 3)),
        (["b", "b"], "unanimous", None, ("b", 1.0)),
        (["a", "b", "b"], "weighted", [0.9, 0.2, 0.2], ("a", 2 / 3)),
        (["a", "b"], "weighted", [0.5, 0.5], (None, 0.5)),
    ],
)
def test_votes_aggregate_into_one_label_and_an_agreement(choices, method, weights, expected):
    assert aggregate(choices, method, weights) == expected


def test_an_unknown_aggregation_is_refused():
    with pytest.raises(ValueError, match="Unknown aggregation"):
        aggregate(["a"], "loudest")


def test_thresholds_keep_comparisons_with_enough_votes_and_agreement():
    assert enough_votes(3, 2 / 3, 3, 0.6)
    assert not enough_votes(2, 1.0, 3, None)
    assert not enough_votes(2, 0.5, 1, 0.6)


def test_choices_map_to_sides_and_back():
    assert [choice_for_position(0), choice_for_position(1)] == ["a", "b"]
    assert side_of(7, 7) == "a" and side_of(8, 7) == "b"
    assert chosen_rejected("b", "A", "B") == ("B", "A")
    assert chosen_rejected("tie", "A", "B") == ("A", "B")
    assert [shown_choice(c, left="b") for c in ("a", "b", "tie")] == ["right", "left", "tie"]


def test_text_booleans_are_read_for_forms_and_refused_for_json():
    assert parse_bool("Yes", name="x") is True and parse_bool("off", name="x") is False
    with pytest.raises(ValidationFailed, match="x must be true or false"):
        parse_bool("yes", name="x", text=False)
    with pytest.raises(ValidationFailed) as caught:
        parse_bool("maybe", name="x", field="filters")
    assert caught.value.field == "filters"


def test_numbers_and_names_are_read_one_way():
    assert parse_fraction("0.25", name="f") == 0.25
    with pytest.raises(ValidationFailed, match=r"between 0 and 0\.5"):
        parse_fraction(0.75, name="f", high=0.5)
    with pytest.raises(ValidationFailed):
        parse_fraction("0.25", name="f", text=False)
    with pytest.raises(ValidationFailed):
        parse_positive_int(True, name="n")
    assert parse_positive_int("3", name="n") == 3
    assert parse_names(" bob, ann,bob,", name="a") == ("ann", "bob")
