"""Per-item metrics as pure functions (no I/O, hand-checkable).

Text metrics take a prediction and one or more references and return a score in [0, 1]
(the best over the references); BLEU and chrF use ``sacrebleu`` and are scaled to [0, 1].
Log-likelihood helpers turn per-token logprobs into multiple-choice decisions and perplexity.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

References = str | Sequence[str]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation) | {"\u201c", "\u201d", "\u2018", "\u2019"}


def _refs(references: References) -> list[str]:
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("at least one reference is needed")
    return [str(r) for r in refs]


def normalize(text: str) -> str:
    """SQuAD-style normalisation: NFKC, lower case, no punctuation, no articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, references: References) -> float:
    """1.0 when the stripped prediction equals a reference exactly."""
    p = prediction.strip()
    return float(any(p == r.strip() for r in _refs(references)))


def normalized_match(prediction: str, references: References) -> float:
    """1.0 when the normalised prediction equals a normalised reference."""
    p = normalize(prediction)
    return float(any(p == normalize(r) for r in _refs(references)))


def contains(prediction: str, references: References) -> float:
    """1.0 when a normalised reference occurs in the normalised prediction (word-bounded)."""
    p = f" {normalize(prediction)} "
    return float(any(f" {normalize(r)} " in p for r in _refs(references) if normalize(r)))


def regex_match(prediction: str, pattern: str) -> float:
    """1.0 when ``pattern`` (a Python regular expression) matches anywhere in the prediction."""
    return float(re.search(pattern, prediction) is not None)


def token_f1(prediction: str, references: References) -> float:
    """SQuAD token-level F1 on normalised words (best over references)."""
    pred = normalize(prediction).split()
    best = 0.0
    for ref in _refs(references):
        gold = normalize(ref).split()
        if not pred or not gold:
            best = max(best, float(pred == gold))
            continue
        common = sum((Counter(pred) & Counter(gold)).values())
        if common == 0:
            continue
        precision, recall = common / len(pred), common / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def bleu(prediction: str, references: References) -> float:
    """Sentence BLEU (sacrebleu, exponential smoothing) scaled to [0, 1]."""
    import sacrebleu

    return float(sacrebleu.sentence_bleu(prediction, _refs(references)).score) / 100.0


def chrf(prediction: str, references: References) -> float:
    """Sentence chrF (sacrebleu) scaled to [0, 1]."""
    import sacrebleu

    return float(sacrebleu.sentence_chrf(prediction, _refs(references)).score) / 100.0


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def rouge_l(prediction: str, references: References) -> float:
    """ROUGE-L F1 (longest common subsequence of lower-cased words; best over references).

    Words are runs of letters and digits, as rouge-score tokenizes (punctuation is not part of a
    word: "Paris." matches "Paris"); unlike rouge-score, non-ASCII letters count as letters."""
    pred = _words(prediction)
    best = 0.0
    for ref in _refs(references):
        gold = _words(ref)
        if not pred or not gold:
            continue
        lcs = _lcs(pred, gold)
        if lcs == 0:
            continue
        precision, recall = lcs / len(pred), lcs / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def multiple_choice(
    choice_logprobs: Sequence[float], answer: int, choice_lengths: Sequence[int] | None = None
) -> dict[str, float]:
    """Accuracy of the highest-likelihood choice (``acc``) and of the highest likelihood per
    character (``acc_norm``, lm-eval's length normalisation) for one question."""
    if not choice_logprobs:
        raise ValueError("multiple choice needs at least one choice")
    if not 0 <= answer < len(choice_logprobs):
        raise ValueError(f"answer index {answer} outside 0..{len(choice_logprobs) - 1}")
    acc = float(_argmax(choice_logprobs) == answer)
    out = {"acc": acc}
    if choice_lengths is not None:
        normed = [lp / max(n, 1) for lp, n in zip(choice_logprobs, choice_lengths, strict=True)]
        out["acc_norm"] = float(_argmax(normed) == answer)
    return out


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


def perplexity(token_logprobs: Sequence[float]) -> float:
    """exp(-mean logprob) of a token sequence (natural log)."""
    if not token_logprobs:
        raise ValueError("perplexity needs at least one scored token")
    return math.exp(-sum(token_logprobs) / len(token_logprobs))


def corpus_perplexity(logprob_sums: Sequence[float], token_counts: Sequence[int]) -> float:
    """Perplexity over several texts: exp(-Σ logprob / Σ tokens)."""
    total = sum(token_counts)
    if total <= 0:
        raise ValueError("corpus perplexity needs at least one scored token")
    return math.exp(-sum(logprob_sums) / total)


TEXT_METRICS = {
    "exact_match": exact_match,
    "normalized_match": normalized_match,
    "contains": contains,
    "f1": token_f1,
    "bleu": bleu,
    "chrf": chrf,
    "rouge_l": rouge_l,
}
