"""QA scorers with HotpotQA's official semantics (hotpotqa/hotpot: hotpot_evaluate_v1.py).

Pure functions shared by Search-v0's reward and the evaluation harness, so a training reward and
an evaluation score can never disagree. Multi-alias golds (NQ-open) take the best alias, as
FlashRAG and Search-R1 do.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_CLOSED_CLASS = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """Lowercase, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, gold: str) -> bool:
    """HotpotQA's `exact_match_score`: equality after normalization."""
    return normalize_answer(prediction) == normalize_answer(gold)


def f1_score(prediction: str, gold: str) -> tuple[float, float, float]:
    """HotpotQA's `f1_score` -> (f1, precision, recall) over normalized tokens.

    A yes / no / noanswer on either side scores 0 unless both are the same word.
    """
    normalized_prediction = normalize_answer(prediction)
    normalized_gold = normalize_answer(gold)
    if normalized_prediction in _CLOSED_CLASS and normalized_prediction != normalized_gold:
        return 0.0, 0.0, 0.0
    if normalized_gold in _CLOSED_CLASS and normalized_prediction != normalized_gold:
        return 0.0, 0.0, 0.0
    prediction_tokens = normalized_prediction.split()
    gold_tokens = normalized_gold.split()
    num_same = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0, 0.0, 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


def sub_exact_match_score(prediction: str, gold: str) -> bool:
    """FlashRAG's `acc` / Search-R1's `subem`: the normalized gold is a substring of the prediction."""
    return normalize_answer(gold) in normalize_answer(prediction)


def best_exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """EM against any alias (1.0 or 0.0); a missing prediction scores 0."""
    if prediction is None:
        return 0.0
    return float(any(exact_match_score(prediction, gold) for gold in golds))


def best_f1(prediction: str | None, golds: Sequence[str]) -> float:
    """The highest F1 over the aliases; a missing prediction scores 0."""
    if prediction is None or not golds:
        return 0.0
    return max(f1_score(prediction, gold)[0] for gold in golds)


def best_sub_exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """Sub-EM against any alias; a missing prediction scores 0."""
    if prediction is None:
        return 0.0
    return float(any(sub_exact_match_score(prediction, gold) for gold in golds))


def answer_in_text(text: str, golds: Sequence[str]) -> bool:
    """Whether a normalized gold appears in the normalized text as whole tokens.

    Whole-token matching (unlike FlashRAG's raw substring test) keeps a gold "1" from matching
    "1972"; this is what Search-v0's `gold_in_observation` and `first_gold_turn` report.
    """
    haystack = f" {normalize_answer(text)} "
    for gold in golds:
        needle = normalize_answer(gold)
        if needle and f" {needle} " in haystack:
            return True
    return False


def supporting_recall(retrieved_doc_ids: Iterable[str], supporting_doc_ids: Sequence[str]) -> float:
    """Fraction of the gold supporting documents that were retrieved at some point."""
    gold = set(supporting_doc_ids)
    if not gold:
        return 0.0
    return len(gold & set(retrieved_doc_ids)) / len(gold)


def supporting_facts_scores(
    predicted: Iterable[Sequence[object]], gold: Iterable[Sequence[object]]
) -> dict[str, float]:
    """HotpotQA's `update_sp`: EM / F1 / precision / recall over (title, sentence id) facts."""
    predicted_set = {tuple(fact) for fact in predicted}
    gold_set = {tuple(fact) for fact in gold}
    tp = len(predicted_set & gold_set)
    fp = len(predicted_set - gold_set)
    fn = len(gold_set - predicted_set)
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"sp_em": float(fp + fn == 0), "sp_f1": f1, "sp_prec": precision, "sp_recall": recall}


def answer_scores(prediction: str | None, golds: Sequence[str]) -> dict[str, float]:
    """The answer metrics Search-v0 reports: em, f1 and subem against the best alias."""
    return {
        "em": best_exact_match(prediction, golds),
        "f1": best_f1(prediction, golds),
        "subem": best_sub_exact_match(prediction, golds),
    }
