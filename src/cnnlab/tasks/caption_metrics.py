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

from torchmetrics.functional.text import bleu_score

from cnnlab.data.caption_text import tokenize
from cnnlab.errors import CnnlabError


def corpus_bleu(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    """BLEU-1..4 of whitespace-tokenised ``hypotheses`` against their ``references``."""
    return {f"bleu{n}": float(bleu_score(hypotheses, references, n_gram=n)) for n in (1, 2, 3, 4)}


def cider_d(hypotheses: list[str], references: list[list[str]]) -> float:
    """Corpus CIDEr-D (the mean of the per-image scores)."""
    try:
        from pycocoevalcap.cider.cider import Cider
    except ImportError as e:
        raise CnnlabError("CIDEr-D needs pycocoevalcap: pip install 'cnnlab[caption]'") from e
    gts = {i: refs for i, refs in enumerate(references)}
    res = {i: [h] for i, h in enumerate(hypotheses)}
    score, _ = Cider().compute_score(gts, res)
    return float(score)


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
