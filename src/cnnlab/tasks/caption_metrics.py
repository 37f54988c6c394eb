"""Caption metrics: corpus BLEU-1..4 (torchmetrics) and CIDEr-D (pycocoevalcap).

    caption_metrics(["a red circle"], [["a red circle", "one circle"]])
    # {"bleu1": 1.0, ..., "bleu4": ..., "cider": ...}

Both sides are tokenised alike first (``cnnlab.data.caption_text.tokenize``: lower case, no
punctuation), so raw reference strings and generated captions compare word for word.
BLEU is corpus-level (Papineni et al. 2002: clipped n-gram counts and lengths summed over
the corpus, brevity penalty against the closest reference length). CIDEr-D (Vedantam et al.
2015) is the COCO evaluation's: TF-IDF n-gram vectors, Gaussian length penalty, x10.
"""
from __future__ import annotations

import math

from torchmetrics.functional.text import bleu_score

from cnnlab.data.caption_text import tokenize
from cnnlab.errors import CnnlabError


def corpus_bleu(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    """BLEU-1..4 of whitespace-tokenised ``hypotheses`` against their ``references``."""
    return {f"bleu{n}": float(bleu_score(hypotheses, references, n_gram=n)) for n in (1, 2, 3, 4)}


def cider_d(hypotheses: list[str], references: list[list[str]]) -> float:
    """Corpus CIDEr-D (the mean of the per-image scores)."""
    return float(sum(cider_per_image(hypotheses, references)) / len(hypotheses))


def cider_per_image(hypotheses: list[str], references: list[list[str]]) -> list[float]:
    """Each caption's CIDEr-D against its own references (document frequencies over all of them)."""
    try:
        from pycocoevalcap.cider.cider import Cider
    except ImportError as e:
        raise CnnlabError("CIDEr-D needs pycocoevalcap: pip install 'cnnlab[caption]'") from e
    gts = {i: refs for i, refs in enumerate(references)}
    res = {i: [h] for i, h in enumerate(hypotheses)}
    _, scores = Cider().compute_score(gts, res)
    return [float(v) for v in scores]


def caption_metrics(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    """BLEU-1..4 and CIDEr-D of captions tokenised alike (punctuation dropped); ``score`` is BLEU-4."""
    if not hypotheses:
        raise CnnlabError("evaluation split is empty")
    if len(hypotheses) != len(references):
        raise CnnlabError(f"{len(hypotheses)} captions but {len(references)} reference sets")
    hypotheses = [" ".join(tokenize(h)) for h in hypotheses]
    references = [[" ".join(tokenize(r)) for r in refs] for refs in references]
    m = corpus_bleu(hypotheses, references)
    m["cider"] = cider_d(hypotheses, references)
    return {"score": m["bleu4"], **m, "count": len(hypotheses)}


def constant_caption_bleu(candidates: list[str], references: list[list[str]], n_gram: int = 4) -> list[float]:
    """Corpus BLEU-``n_gram`` of each candidate when it is the caption of *every* image.

    The floor a captioner must beat: one fixed sentence for all images. Equal to
    ``corpus_bleu([c] * len(references), references)`` (clipped counts against the per-image
    maximum over references, closest reference length), computed from per-image n-gram tables
    once, so hundreds of candidates score in seconds.
    """
    from collections import Counter

    def grams(words: list[str]) -> Counter:
        return Counter(tuple(words[i:i + n]) for n in range(1, n_gram + 1) for i in range(len(words) - n + 1))

    refs = [[r.split() for r in (" ".join(tokenize(x)) for x in image)] for image in references]
    tables = []
    for image in refs:
        table: Counter = Counter()
        for r in image:
            table |= grams(r)
        tables.append(table)
    lengths = [[len(r) for r in image] for image in refs]
    scores = []
    for cand in candidates:
        words = tokenize(cand)
        own = grams(words)
        matched = [0] * n_gram
        for table in tables:
            for g, c in own.items():
                matched[len(g) - 1] += min(c, table.get(g, 0))
        total = [sum(c for g, c in own.items() if len(g) == n) * len(tables) for n in range(1, n_gram + 1)]
        ref_len = sum(ls[min(range(len(ls)), key=lambda j: abs(len(words) - ls[j]))] for ls in lengths)
        hyp_len = len(words) * len(tables)
        if not words or min(matched) == 0:
            scores.append(0.0)
            continue
        log_p = sum(math.log(m / t) for m, t in zip(matched, total)) / n_gram
        brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
        scores.append(brevity * math.exp(log_p))
    return scores
