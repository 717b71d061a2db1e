"""The arithmetic of annotation quality: plain functions over counts, no Django.

Choices are the canonical labels ``a``, ``b``, ``tie`` and ``both_bad``.
"""

from collections.abc import Iterable, Mapping

LABELS = ("a", "b", "tie", "both_bad")


def plurality(weights: Mapping[str, float]) -> str | None:
    """The label with strictly the most weight, or None when the top is shared (a split).

    >>> plurality({"a": 2, "b": 1})
    'a'
    >>> plurality({"a": 1, "b": 1}) is None
    True
    """
    best, best_weight, shared = None, 0.0, False
    for label in sorted(weights):  # sorted: the answer never depends on dict order
        weight = weights[label]
        if weight <= 0:
            continue
        if weight > best_weight:
            best, best_weight, shared = label, weight, False
        elif weight == best_weight:
            shared = True
    return None if shared else best


def cohen_kappa(confusion: Mapping[tuple[str, str], int]) -> float | None:
    """Cohen's kappa of two raters from ``{(label_1, label_2): count}``.

    None when it is undefined: no shared items, or both raters always used one same label
    (expected agreement 1).
    """
    total = sum(confusion.values())
    if total == 0:
        return None
    observed = sum(n for (x, y), n in confusion.items() if x == y) / total
    first: dict[str, int] = {}
    second: dict[str, int] = {}
    for (x, y), n in confusion.items():
        first[x] = first.get(x, 0) + n
        second[y] = second.get(y, 0) + n
    expected = sum(first.get(label, 0) * second.get(label, 0) for label in first) / (total * total)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha(unit_counts: Iterable[Mapping[str, int]]) -> float | None:
    """Nominal Krippendorff's alpha from per-comparison label counts (``krippendorff`` package).

    Units with fewer than two votes carry no information about agreement and are left out;
    None when fewer than two units remain or every vote has the same label.
    """
    import numpy as np

    rows = [[counts.get(label, 0) for label in LABELS] for counts in unit_counts]
    return krippendorff_alpha_of_matrix(np.asarray(rows, dtype=float).reshape(-1, len(LABELS)))


def krippendorff_alpha_of_matrix(matrix) -> float | None:
    """The same from a (units, labels) numpy matrix of counts, columns in ``LABELS`` order."""
    import krippendorff
    import numpy as np

    matrix = matrix[matrix.sum(axis=1) >= 2]
    if len(matrix) < 2 or np.count_nonzero(matrix.sum(axis=0)) < 2:
        return None  # one label only: disagreement is zero by construction, alpha is undefined
    value = float(krippendorff.alpha(value_counts=matrix, level_of_measurement="nominal"))
    return None if value != value else value  # NaN -> None


def binomial_p(successes: int, trials: int, p: float = 0.5) -> float | None:
    """Two-sided exact binomial test p-value (scipy), None for zero trials."""
    if trials <= 0:
        return None
    from scipy.stats import binomtest

    return float(binomtest(successes, trials, p).pvalue)


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None
