"""Running tallies of the quality report: per-annotator counts of bias and care, and what one
pass over a project's judgements (grouped by comparison) gathers for agreement. No queries."""

from array import array
from collections import defaultdict
from dataclasses import dataclass, field

from annotation.quality.stats import LABELS, binomial_p, plurality, rate
from annotation.sides import side_of


@dataclass
class Tally:
    """Running counts for one annotator (or the whole project)."""

    judgements: int = 0
    ties: int = 0
    both_bad: int = 0
    decisive: int = 0
    left: int = 0
    length_decisive: int = 0
    longer: int = 0
    length_gap_sum: int = 0
    timed: int = 0
    fast: int = 0
    majority_seen: int = 0
    majority_agree: int = 0
    kappa_weighted_sum: float = 0.0
    kappa_items: int = 0

    def add(self, *, choice: str, duration_ms, left_is_a: bool, len_a, len_b, fast_ms: int) -> None:
        self.judgements += 1
        if choice == "tie":
            self.ties += 1
        elif choice == "both_bad":
            self.both_bad += 1
        else:
            self.decisive += 1
            chose_a = choice == "a"
            self.left += chose_a == left_is_a
            if len_a is not None and len_b is not None and len_a != len_b:
                self.length_decisive += 1
                self.longer += chose_a == (len_a > len_b)
                self.length_gap_sum += (len_a - len_b) if chose_a else (len_b - len_a)
        if duration_ms is not None:
            self.timed += 1
            self.fast += duration_ms < fast_ms

    def bias(self, fast_ms: int) -> dict:
        return {
            "decisive": self.decisive,
            "left_rate": rate(self.left, self.decisive),
            "left_p": binomial_p(self.left, self.decisive),
            "length_decisive": self.length_decisive,
            "longer_rate": rate(self.longer, self.length_decisive),
            "longer_p": binomial_p(self.longer, self.length_decisive),
            "mean_length_gap": rate(self.length_gap_sum, self.length_decisive),
            "fast_ms": fast_ms,
            "fast_rate": rate(self.fast, self.timed),
            "tie_rate": rate(self.ties, self.judgements),
            "both_bad_rate": rate(self.both_bad, self.judgements),
        }


@dataclass
class VotePass:
    """What one streaming pass over the judgements collects."""

    fast_ms: int
    overall: Tally = field(default_factory=Tally)
    per_annotator: dict[int, Tally] = field(default_factory=lambda: defaultdict(Tally))
    confusions: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    unit_counts: list[dict[str, int]] = field(default_factory=list)
    # Where each annotator voted among units with overlap: (unit index, label index), compactly.
    voted_units: dict[int, array] = field(default_factory=lambda: defaultdict(lambda: array("l")))
    voted_labels: dict[int, array] = field(default_factory=lambda: defaultdict(lambda: array("b")))
    majority_votes: int = 0
    majority_agree: int = 0

    def add_comparison(self, rows) -> None:
        votes = []
        for _, annotator_id, choice, duration_ms, left_id, a_id, len_a, len_b in rows:
            kwargs = {
                "choice": choice,
                "duration_ms": duration_ms,
                "left_is_a": side_of(left_id, a_id) == "a",
                "len_a": len_a,
                "len_b": len_b,
                "fast_ms": self.fast_ms,
            }
            self.overall.add(**kwargs)
            self.per_annotator[annotator_id].add(**kwargs)
            votes.append((annotator_id, choice))
        if len(votes) >= 2:
            self._add_overlap(votes)

    def _add_overlap(self, votes: list[tuple[int, str]]) -> None:
        counts: dict[str, int] = defaultdict(int)
        for _, choice in votes:
            counts[choice] += 1
        for annotator_id, choice in votes:
            self.voted_units[annotator_id].append(len(self.unit_counts))
            self.voted_labels[annotator_id].append(LABELS.index(choice))
        self.unit_counts.append(dict(counts))
        winner = plurality(counts)
        self.majority_votes += len(votes)
        self.majority_agree += counts[winner] if winner else 0
        for annotator_id, choice in votes:  # leave-one-out: the plurality of the others
            counts[choice] -= 1
            others = plurality(counts)
            counts[choice] += 1
            if others is not None:
                tally = self.per_annotator[annotator_id]
                tally.majority_seen += 1
                tally.majority_agree += choice == others
        for i, (first, first_choice) in enumerate(votes):
            for second, second_choice in votes[i + 1 :]:
                if first < second:
                    self.confusions[(first, second)][(first_choice, second_choice)] += 1
                else:
                    self.confusions[(second, first)][(second_choice, first_choice)] += 1
