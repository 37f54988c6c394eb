"""Decoding a captioner: beam search over whole batches (beam size 1 is greedy decoding).

    beams = beam_search(model, images, start=1, end=2, beam=5, max_len=20, length_penalty=0.6)
    beams[0][0]   # the best caption of image 0: {"ids": [...], "score": -1.3, "logprob": -1.6, "alphas": ...}

Scores are summed log-probabilities divided by the GNMT length penalty ((5 + n) / 6) ** alpha
(alpha 0: raw log-probability, which favours short captions). ``banned`` ids are never
generated (``<pad>``, ``<start>``, ``<unk>``).
"""
from __future__ import annotations

import torch
from torch import Tensor


def _penalty(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(model, images: Tensor | None, *, start: int, end: int, beam: int = 5, max_len: int = 20,
                length_penalty: float = 0.0, banned: tuple[int, ...] = (), n_best: int | None = None,
                features: Tensor | None = None) -> list[list[dict]]:
    """The ``n_best`` (default ``beam``) captions of each image, best first.

    images: normalised (B, C, H, W), or ``features``: their ``model.encode(images)`` (B, h*w, C')
    when already computed. Each caption: ``ids`` (words, no <start>/<end>), ``score``
    (length-normalised), ``logprob`` and ``alphas`` ((len(ids) + 1, h*w) attention, or None).
    """
    features = model.encode(images) if features is None else features
    b, k, device = len(features), beam, features.device
    memory, (h, c) = model.start(features)
    expand = torch.arange(b, device=device).repeat_interleave(k)  # (B*K,) image of each beam
    memory = tuple(m[expand] for m in memory)
    state = (h[expand], c[expand])
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start equal: keep one alive
    words = torch.full((b * k,), start, dtype=torch.long, device=device)
    history = torch.zeros(b, k, 0, dtype=torch.long, device=device)
    alphas_seen = None
    finished: list[list[tuple]] = [[] for _ in range(b)]
    done = [False] * b
    for t in range(max_len):
        logits, state, alpha = model.step(memory, state, words)
        logp = _log_probs(logits, banned, end, last=t == max_len - 1)  # (B*K, V)
        v = logp.shape[1]
        cand = (scores[:, :, None] + logp.view(b, k, v)).view(b, k * v)
        top, idx = cand.topk(min(2 * k, k * v), dim=1)  # (B, 2K)
        src, word = idx // v, idx % v
        hist = torch.cat([history.gather(1, src[:, :, None].expand(-1, -1, history.shape[2])),
                          word[:, :, None]], 2)  # (B, 2K, t + 1)
        if alpha is not None:  # attention history follows its beam: (B, 2K, t + 1, P)
            a = alpha.float().view(b, k, 1, -1)
            seen = a if alphas_seen is None else torch.cat([alphas_seen, a], 2)
            a_hist = seen.gather(1, src[:, :, None, None].expand(-1, -1, *seen.shape[2:]))
        is_end = word == end
        for i, j in (is_end[:, :k]).nonzero().tolist():  # an <end> among the top K: a finished caption
            if not done[i] and top[i, j] > float("-inf"):
                ids = hist[i, j, :-1].tolist()
                finished[i].append((float(top[i, j]) / _penalty(t + 1, length_penalty), float(top[i, j]),
                                    ids, a_hist[i, j].cpu() if alpha is not None else None))
        order = torch.sort(is_end.int(), dim=1, stable=True).indices[:, :k]  # the K best that go on
        scores = top.gather(1, order)
        scores[torch.tensor(done, device=scores.device)] = float("-inf")
        history = hist.gather(1, order[:, :, None].expand(-1, -1, hist.shape[2]))
        if alpha is not None:
            alphas_seen = a_hist.gather(1, order[:, :, None, None].expand(-1, -1, *a_hist.shape[2:]))
        beam_src = src.gather(1, order)  # (B, K) which old beam each new one extends
        flat = (torch.arange(b, device=device)[:, None] * k + beam_src).view(-1)
        state = (state[0][flat], state[1][flat])
        words = history[:, :, -1].reshape(-1)
        best_alive = scores.max(1).values.tolist()
        bound = _penalty(max_len if length_penalty > 0 else t + 1, length_penalty)
        for i in range(b):
            if len(finished[i]) >= k:
                worst = sorted(f[0] for f in finished[i])[-k]
                done[i] = done[i] or best_alive[i] / bound <= worst
        if all(done):
            break
    return [_ranked(found, n_best or k) for found in finished]


def _log_probs(logits: Tensor, banned: tuple[int, ...], end: int, last: bool) -> Tensor:
    """(B*K, V) next-word log-probabilities; banned words never, and on the ``last`` step only <end>."""
    logp = logits.float().log_softmax(-1)
    if banned:
        logp[:, list(banned)] = float("-inf")
    if last:  # the last step may only end the caption
        logp[:, torch.arange(logp.shape[1], device=logp.device) != end] = float("-inf")
    return logp


def _ranked(finished: list[tuple], n: int) -> list[dict]:
    """One image's ``n`` best finished captions (score, logprob, ids, alphas), best first."""
    ranked = sorted(finished, key=lambda f: -f[0])[:n]
    return [{"ids": ids, "score": s, "logprob": lp, "alphas": al} for s, lp, ids, al in ranked]
