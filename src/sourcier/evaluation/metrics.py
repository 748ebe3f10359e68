"""Evaluation metrics: ranking quality, answer containment, refusal, latency percentiles.

Pure functions over plain values (lists of document keys, strings, numbers), so each
one can be checked by hand. :mod:`sourcier.evaluate` feeds them with real runs.

Ranking conventions (the same for every method and data set):

- A ranking is the list of document keys of the retrieved chunks, best first; a
  document may appear several times (several of its chunks were retrieved).
- A position is relevant when its chunk belongs to a gold document **and** that
  document has not appeared higher up: a second chunk of the same gold document adds
  nothing. With one gold document per question (PIAF) this is plain "rank of the
  first gold chunk".
- Recall@k is the share of questions with at least one gold document among the
  top ``k`` chunks (also called success@k or hit rate).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence

# the cut-offs every report gives recall at
RECALL_KS = (1, 5, 10, 20)

__all__ = [
    "RECALL_KS",
    "contains_answer",
    "dcg",
    "first_relevant_rank",
    "mean",
    "mrr_at_k",
    "ndcg_at_k",
    "normalise_answer",
    "holds_answer",
    "on_screen",
    "percentile",
    "recall_at_k",
    "recall_curve",
    "refusal_scores",
    "summarise_latencies",
]


def first_relevant_rank(ranking: Sequence[str], gold: Collection[str]) -> int | None:
    """The 1-based rank of the first chunk that belongs to a gold document, or None."""
    for rank, key in enumerate(ranking, start=1):
        if key in gold:
            return rank
    return None


def recall_at_k(ranking: Sequence[str], gold: Collection[str], k: int) -> float:
    """1.0 when a gold document is among the top ``k`` chunks, else 0.0.

    Args:
        ranking: document keys of the retrieved chunks, best first.
        gold: the gold document keys.
        k: the cut-off.

    Returns:
        1.0 or 0.0 (average it over questions to get Recall@k).
    """
    rank = first_relevant_rank(ranking[:k], gold)
    return 1.0 if rank is not None else 0.0


def mrr_at_k(ranking: Sequence[str], gold: Collection[str], k: int = 10) -> float:
    """Reciprocal rank of the first gold chunk within the top ``k`` (0.0 if none)."""
    rank = first_relevant_rank(ranking[:k], gold)
    return 1.0 / rank if rank is not None else 0.0


def _gains(ranking: Sequence[str], gold: Collection[str], k: int) -> list[float]:
    seen: set[str] = set()
    gains = []
    for key in ranking[:k]:
        if key in gold and key not in seen:
            seen.add(key)
            gains.append(1.0)
        else:
            gains.append(0.0)
    return gains


def dcg(gains: Iterable[float]) -> float:
    """Discounted cumulative gain: ``sum(g_i / log2(i + 1))`` with ranks ``i`` from 1."""
    return sum(g / math.log2(i + 1) for i, g in enumerate(gains, start=1))


def ndcg_at_k(ranking: Sequence[str], gold: Collection[str], k: int = 10) -> float:
    """Binary-relevance nDCG@k; each gold document counts once (its best chunk).

    The ideal ranking puts ``min(len(gold), k)`` gold documents first.
    """
    if not gold:
        return 0.0
    ideal = dcg([1.0] * min(len(set(gold)), k))
    return dcg(_gains(ranking, gold, k)) / ideal


def recall_curve(
    rankings: Sequence[Sequence[str]], golds: Sequence[Collection[str]], max_k: int
) -> list[float]:
    """Recall@1 .. Recall@max_k over a set of questions (a list of ``max_k`` values)."""
    if not rankings:
        return [0.0] * max_k
    firsts = [first_relevant_rank(r, g) for r, g in zip(rankings, golds, strict=True)]
    return [
        sum(1 for f in firsts if f is not None and f <= k) / len(firsts)
        for k in range(1, max_k + 1)
    ]


# --------------------------------------------------------------------------- answers

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})
_QUOTES = str.maketrans({"«": '"', "»": '"', "“": '"', "”": '"', "„": '"'})
_DASHES = str.maketrans({"‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-"})
_SPACES = re.compile(r"\s+")
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss"})


def normalise_answer(text: str) -> str:
    """Fold case, accents, ligatures, apostrophes, quotes, dashes and runs of spaces.

    ``"Jean-Pierre  HENRY"``, ``"jean-pierre henry"`` and ``"Jéan–Pierre Henry"`` all
    normalise to ``"jean-pierre henry"``; so do typographic variants of the same
    quote (``l’Etat`` / ``l'État``) and non-breaking spaces.
    """
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.translate(_LIGATURES).translate(_APOSTROPHES).translate(_QUOTES)
    text = text.translate(_DASHES)
    return _SPACES.sub(" ", text).strip()


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """Whether any accepted answer string occurs in ``text`` (both normalised)."""
    haystack = normalise_answer(text)
    return any((needle := normalise_answer(a)) and needle in haystack for a in answers)


# what a gold string may start with that a marked fact leaves out ("à Cambridge", "en 1439")
_LEADING = re.compile(r"^(?:(?:à|a|en|le|la|les|l'|au|aux|dans|de|du|des|d'|the|in|on|at)\s*)+")


def holds_answer(fact: str, answers: Iterable[str]) -> bool:
    """Whether a marked fact holds an accepted answer string, read without the
    preposition or article it starts with: "Cambridge" holds "à Cambridge", "9 mai 1945"
    holds "le 9 mai 1945"; "2017" does not hold "à partir de 2017"."""
    haystack = normalise_answer(fact)
    return any(
        (needle := _LEADING.sub("", normalise_answer(a)).strip()) and needle in haystack
        for a in answers
    )


def on_screen(answer: str, quotes: Iterable[str], answers: Iterable[str]) -> bool:
    """Whether a reader sees an accepted answer: in the answer text, or in one of the
    quotes its sources show (each quote on its own)."""
    golds = list(answers)
    return contains_answer(answer, golds) or any(contains_answer(q, golds) for q in quotes)


def refusal_scores(refused: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float]:
    """Refusal precision/recall with the unanswerable questions as positives.

    Args:
        refused: whether the system refused each question.
        answerable: whether each question can be answered from the documents.

    Returns:
        ``precision`` (refusals that were right), ``recall`` (unanswerable questions
        refused), ``false_refusal_rate`` (answerable questions refused) and
        ``hallucination_rate`` (unanswerable questions answered). A ratio with an
        empty denominator is NaN, and so is precision when no question is unanswerable.
    """
    pairs = list(zip(refused, answerable, strict=True))
    tp = sum(1 for r, a in pairs if r and not a)
    n_refused = sum(1 for r, _ in pairs if r)
    n_unanswerable = sum(1 for _, a in pairs if not a)
    n_answerable = len(pairs) - n_unanswerable
    false_refusals = sum(1 for r, a in pairs if r and a)
    return {
        # with no unanswerable question, a refusal can't be right: precision is undefined
        "precision": _ratio(tp, n_refused) if n_unanswerable else float("nan"),
        "recall": _ratio(tp, n_unanswerable),
        "false_refusal_rate": _ratio(false_refusals, n_answerable),
        "hallucination_rate": _ratio(n_unanswerable - tp, n_unanswerable),
    }


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


# --------------------------------------------------------------------------- numbers


def mean(values: Iterable[float]) -> float:
    """The arithmetic mean (NaN for no values)."""
    vals = list(values)
    return sum(vals) / len(vals) if vals else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise_latencies(samples: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """p50, p95, mean and count per stage, in milliseconds."""
    return {
        stage: {
            "p50": percentile(vals, 50),
            "p95": percentile(vals, 95),
            "mean": mean(vals),
            "n": len(vals),
        }
        for stage, vals in samples.items()
        if vals
    }
