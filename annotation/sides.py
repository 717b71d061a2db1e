"""Choices and sides: the one definition of how a canonical choice relates to the two responses.

A comparison's responses sit at canonical positions 0 and 1, whose choices are ``a`` and ``b``;
annotators see them in a display order, left then right. Votes store the canonical choice, so
every reader that turns a choice into texts or a display side goes through these functions.

>>> chosen_rejected("b", "first", "second")
('second', 'first')
>>> shown_choice("a", left="b")
'right'
"""

# Plain strings equal to ``Choice.A``/``Choice.B``: the exporters use this module without Django.
A, B = "a", "b"
SIDES = (A, B)  # by canonical position


def choice_for_position(position: int) -> str:
    """The canonical choice that prefers the response at ``position`` (0 or 1)."""
    return SIDES[position]


def side_of(response_id: int, a_response_id: int, /) -> str:
    """The canonical side (``a``/``b``) of ``response_id`` in a pair whose A is ``a_response_id``."""
    return A if response_id == a_response_id else B


def chosen_rejected(choice: str | None, response_a: str, response_b: str) -> tuple[str, str]:
    """(chosen, rejected) for an a/b choice; for anything else A then B, in canonical order."""
    if choice == B:
        return response_b, response_a
    return response_a, response_b


def shown_choice(choice: str, *, left: str) -> str:
    """The choice as the annotator saw it: ``left``/``right`` for a/b, ties and both-bad as they are."""
    if choice not in SIDES:
        return choice
    return "left" if choice == left else "right"
