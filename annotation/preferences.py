"""What a label's ranking implies: which response beat which, which tied. Pure; no database.

A ranking (``Label.ranking``) is a list of groups of response ids, best group
first. Every response in an earlier group is preferred to every response in a
later group (InstructGPT: all implied pairs, not just neighbours); responses in
one group were judged equally good. A pairwise label is the two-response case:
"A better" is ``[[a], [b]]`` and a tie is ``[[a, b]]``, A and B being the left
and right of the label's ``display_order``.

A "both bad" label is stored as a tie (``[[a, b]]`` with ``Label.both_bad``) but
says nothing about which response is better, so callers leave it out before
asking what its ranking implies; these functions see only the groups.

Agreement and annotator quality compare ``verdicts``; training pairs are
``preferred_pairs`` (with a margin from the label's strength) and, where a project
trains on them, ``tied_pairs``.
"""
import itertools

# The verdict on a response pair whose two sides share a group.
TIE = "tie"


def pairwise_ranking(*, left: int, right: int, winner: int | None) -> list[list[int]]:
    """The ranking a two-response judgement is stored as.

    The ``winner`` first; one group of both when neither won (a tie, or "both bad").
    """
    if winner is None:
        return [[left, right]]
    if winner not in (left, right):
        raise ValueError(f"winner {winner} is neither {left} nor {right}")
    return [[left], [right]] if winner == left else [[right], [left]]


def preferred_pairs(ranking: list[list[int]]) -> list[tuple[int, int]]:
    """``(preferred, other)`` for every ordered pair the ranking implies.

    Ordered by the better group, then the worse one, then position within each
    group, so the same ranking always gives the same list.
    """
    return [
        (preferred, other)
        for better, worse in itertools.combinations(range(len(ranking)), 2)
        for preferred, other in itertools.product(ranking[better], ranking[worse])
    ]


def tied_pairs(ranking: list[list[int]]) -> list[tuple[int, int]]:
    """Every pair of responses that share a group (judged equally good), in ranking order."""
    return [pair for group in ranking for pair in itertools.combinations(group, 2)]


def verdicts(ranking: list[list[int]]) -> dict[frozenset, int | str]:
    """``{frozenset({x, y}): winner id or TIE}`` for every response pair the ranking covers.

    Unordered pairs, so two labels that showed the responses in different orders
    compare on the same keys.
    """
    result: dict[frozenset, int | str] = {
        frozenset((preferred, other)): preferred for preferred, other in preferred_pairs(ranking)
    }
    result.update((frozenset(pair), TIE) for pair in tied_pairs(ranking))
    return result
