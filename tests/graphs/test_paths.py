"""Path records and the rule that pruning never empties a (question node, answer node) group."""

from graphs.paths import PathRecord, keep_each_group


def path(*nodes: str) -> PathRecord:
    return PathRecord(nodes=list(nodes), names=list(nodes), types=["t"] * len(nodes), hops=[], text="-".join(nodes),
                      truncated=False)


A1, A2, A3 = path("q1", "x", "a"), path("q1", "y", "a"), path("q1", "z", "a")
B1, B2 = path("q2", "x", "a"), path("q2", "w", "a")
C1 = path("q3", "a")


def test_a_group_the_choice_missed_gets_its_best_candidate():
    kept = keep_each_group([A2, A1], [A1, A2, A3, B1, B2, C1], limit=10)
    assert kept == [A2, A1, B1, C1]


def test_the_limit_cuts_extra_paths_before_any_group():
    assert keep_each_group([A1, A2, A3, B2], [A1, A2, A3, B1, B2], limit=3) == [A1, A2, B2]
    # more groups than the limit: one path each, past the limit
    assert keep_each_group([A1, A2], [A1, B1, C1], limit=1) == [A1, B1, C1]


def test_nothing_in_nothing_out_and_no_duplicates():
    assert keep_each_group([], [], limit=5) == []
    assert keep_each_group([A1, A1], [A1], limit=5) == [A1]
