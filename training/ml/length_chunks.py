"""Cut a padded batch into a few length-sorted chunks, each padded only to its own longest sequence.

A batch of 2B right-padded sequences is one block as wide as its longest sequence; on a CPU every pad
token costs as much as a real one. Running the sequences through the model in chunks of similar
length removes most of that padding, at a fixed cost per chunk (one more forward and backward call).
`plan` picks the chunks that minimise padded tokens + `overhead` x chunks, exactly (a dynamic
programme over the sorted lengths: chunks of a sorted list are contiguous in an optimal plan).

>>> plan([5, 100, 7, 98], overhead=32)
[[0, 2], [3, 1]]
>>> plan([5, 100, 7, 98], overhead=1000)
[[0, 2, 3, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence

# Measured with minilm-l6 on 2 CPU cores (fp32, forward + backward): about 10 ms per call plus
# 0.33 ms per token, so one more call costs what ~32 tokens do. Larger models cost more per token,
# which only makes splitting more worthwhile than this constant assumes.
CPU_OVERHEAD_TOKENS = 32


def plan(lengths: Sequence[int], *, overhead: int) -> list[list[int]]:
    """Row indices grouped into chunks, shortest sequences first; every row appears exactly once.

    Minimises sum over chunks of (rows x longest length in the chunk) + overhead per chunk.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    sizes = [lengths[i] for i in order]
    n = len(sizes)
    # best[j]: the cheapest cost of the j shortest rows; start[j]: where their last chunk starts.
    best = [0] + [0] * n
    start = [0] * (n + 1)
    for j in range(1, n + 1):
        width = sizes[j - 1]  # the longest of rows i..j-1, whatever i is
        best[j], start[j] = min((best[i] + (j - i) * width + overhead, i) for i in range(j))
    chunks, j = [], n
    while j:
        chunks.append(order[start[j] : j])
        j = start[j]
    return chunks[::-1]
