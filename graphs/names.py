"""Names as exams write them and as ontologies write them, brought to one form.

Node names, synonyms and the mentions looked up against them all pass through
:func:`normalize`, so "IL-4", "Il4" and "IL4" meet, as do "β-blockers" and "beta blocker",
"type 2 diabetes" and "Type II diabetes", "HbA1c" and "hemoglobin A1c". The rules are
deliberately few and symmetric: whatever they do to a mention they do to every name.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
    "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu",
    "ν": "nu", "ξ": "xi", "π": "pi", "ρ": "rho", "σ": "sigma", "τ": "tau", "φ": "phi",
    "χ": "chi", "ψ": "psi", "ω": "omega",
}  # fmt: skip

# Whole-word spellings that exams and ontologies use for the same thing.
SPELLINGS = {
    "hba1c": "hemoglobin a1c",
    "haemoglobin": "hemoglobin",
    "anaemia": "anemia",
    "oedema": "edema",
    "oesophagus": "esophagus",
    "oesophageal": "esophageal",
    "ii": "2",
    "iii": "3",
    "iv": "4",
}

_NON_WORD = re.compile(r"[^0-9a-z]+")
# A possessive "'s" (or a plural's bare apostrophe) is part of no name: "Bartter's syndrome"
# is "Bartter syndrome", "Hashimoto’s thyroiditis" "Hashimoto thyroiditis".
_POSSESSIVE = re.compile(r"(?<=[a-z])['’]s?\b")
# A letter run followed by a digit run (or the reverse) split only by punctuation: "il-4", "a-1".
_SPLIT_SYMBOL = re.compile(r"\b([a-z]{1,5}) (\d{1,3})\b")
_SYMBOL_PUNCT = re.compile(r"[\s\-_/.]+")
# A plural "-s" dropped from words of four letters or more; "-ss", "-us", "-is" are singular.
_PLURAL = re.compile(r"(?<=[a-z]{3})(?<![siu])s$")


_SPELLED_GREEK = str.maketrans(GREEK)


def _fold(text: str) -> str:
    """Lower case, Greek letters spelled out, accents dropped."""
    text = text.lower().translate(_SPELLED_GREEK)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 5:
        return word[:-3] + "y"
    return _PLURAL.sub("", word)


@lru_cache(maxsize=1 << 17)
def normalize(text: str) -> str:
    """The form names are matched in: case, punctuation, Greek letters, plurals, spellings folded.

    Remembered for the latest texts: extraction looks up every run of up to eight words of a
    question, and grounding every step's, so the same phrases come back sample after sample.

    >>> normalize("IL-4") == normalize("IL4"), normalize("ACE inhibitors") == normalize("ACE inhibitor")
    (True, True)
    """
    words = _NON_WORD.sub(" ", _POSSESSIVE.sub("", _fold(text))).split()
    words = [SPELLINGS.get(w, w) for w in words]
    joined = _SPLIT_SYMBOL.sub(r"\1\2", " ".join(_singular(w) for w in words))
    return joined.strip()


# Words a name may add or leave out and still name the same concept in other words:
# "Angioedema, hereditary, 1" is "Hereditary angioedema" numbered, "Fallot tetralogy" is
# "Tetralogy of Fallot".
_REWORDING_FILLER = frozenset("of the type".split())


def reworded_key(text: str, numbered: bool = True) -> frozenset[str]:
    """A name's words in any order, without filler; without its numbers too unless
    ``numbered`` (a name's forms are numbered: "Angioedema, hereditary, 1", "..., 2")."""
    return frozenset(w for w in normalize(text).split()
                     if w not in _REWORDING_FILLER and (numbered or not w.isdigit()))


def symbol_form(text: str) -> str:
    """A gene symbol as written, case kept, separators dropped: "IL-4" → "IL4", "HLA B27" → "HLAB27"."""
    return _SYMBOL_PUNCT.sub("", text.translate(_SPELLED_GREEK))
