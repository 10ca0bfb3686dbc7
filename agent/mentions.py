"""KG-only entity extraction: the longest runs of words that name a node of the graph.

Word n-grams of the text are looked up in the graph's name index, longest first, without
overlaps. Matches that are English function words or too short to be specific are
dropped, and gene symbols must match case-sensitively ("CAT" the gene, not "cat").
"""

from __future__ import annotations

import re

from graphs.store import KnowledgeGraph

MAX_WORDS = 8
_WORD = re.compile(r"[A-Za-z0-9]+")

# Words that happen to be node names or synonyms in HPO/PrimeKG but say nothing medical.
STOPWORDS = frozenset(
    """a about above after again all also an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here him his how i if in into is it its itself just
    man me more most no nor not now of off on once only or other our out over own patient
    same she should so some such than that the their them then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with woman would year years old you your day days week weeks month months history
    shows showed normal following most likely increased decreased may one two three""".split()
)


def find_mentions(kg: KnowledgeGraph, text: str) -> list[str]:
    """Surface forms in ``text`` that name a node, in order of appearance, each once."""
    words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    taken = [False] * len(words)
    found: list[tuple[int, str]] = []
    for n in range(min(MAX_WORDS, len(words)), 0, -1):
        for i in range(len(words) - n + 1):
            if any(taken[i : i + n]):
                continue
            surface = text[words[i][1] : words[i + n - 1][2]]
            if _is_specific(kg, surface):
                taken[i : i + n] = [True] * n
                found.append((i, surface))
    seen: set[str] = set()
    ordered = []
    for _, surface in sorted(found):
        key = surface.lower()
        if key not in seen:
            seen.add(key)
            ordered.append(surface)
    return ordered


def _is_specific(kg: KnowledgeGraph, surface: str) -> bool:
    ids = kg.nodes_named(surface)
    if not ids:
        return False
    words = surface.lower().split()
    if all(w in STOPWORDS or w.isdigit() for w in _WORD.findall(surface.lower())):
        return False
    if len(words) == 1 and len(surface) < 3:
        return False
    return any(_matches_case(kg, node_id, surface) for node_id in ids)


def _matches_case(kg: KnowledgeGraph, node_id: str, surface: str) -> bool:
    """Gene symbols are only recognised in their own capitalisation."""
    if kg.graph.nodes[node_id]["type"] != "gene/protein":
        return True
    return surface in kg.labels(node_id)
