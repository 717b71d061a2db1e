import itertools
import random

from training.ml import length_chunks


def cost(lengths, chunks, overhead):
    return sum(len(rows) * max(lengths[i] for i in rows) + overhead for rows in chunks)


def brute_force_cost(lengths, overhead):
    """Cheapest split of the sorted lengths, trying every set of cut points."""
    sizes = sorted(lengths)
    n, best = len(sizes), float("inf")
    for k in range(n):
        for cuts in itertools.combinations(range(1, n), k):
            bounds = [0, *cuts, n]
            best = min(best, sum((b - a) * sizes[b - 1] + overhead for a, b in itertools.pairwise(bounds)))
    return best


def test_every_row_lands_in_exactly_one_chunk_shortest_first():
    lengths = [40, 3, 17, 17, 90, 5, 60, 2]
    chunks = length_chunks.plan(lengths, overhead=20)
    assert sorted(i for rows in chunks for i in rows) == list(range(len(lengths)))
    flat = [lengths[i] for rows in chunks for i in rows]
    assert flat == sorted(flat)


def test_no_overhead_means_no_padding_and_a_huge_one_means_one_block():
    lengths = [40, 3, 17, 17, 90]
    free = length_chunks.plan(lengths, overhead=0)
    assert all(len({lengths[i] for i in rows}) == 1 for rows in free)
    assert length_chunks.plan(lengths, overhead=10**6) == [[1, 2, 3, 0, 4]]


def test_the_plan_is_the_cheapest_possible():
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 200) for _ in range(rng.randint(1, 8))]
        overhead = rng.choice([0, 5, 32, 100, 1000])
        chunks = length_chunks.plan(lengths, overhead=overhead)
        assert cost(lengths, chunks, overhead) == brute_force_cost(lengths, overhead)


def test_an_empty_batch_has_no_chunks():
    assert length_chunks.plan([], overhead=32) == []
