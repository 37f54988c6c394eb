"""Caption text: tokenisation, vocabularies, and references as token-id tensors.

    tokenize("Two shapes: a small RED circle.")   # ['two', 'shapes', 'a', 'small', 'red', 'circle']
    vocab = Vocabulary.build([tokenize(c) for c in captions], min_count=5)
    refs = encode_references([["a red circle", "one circle"]], vocab.words)   # (1, 2, L) int64

A caption dataset is a ``CaptionImages`` (or ``cnnlab.data.formats.captions.CaptionFiles``) whose labels are references
encoded as ``(N, R, L)`` ids: R references per image (a missing one is all ``<pad>``), each
``<start> w1 .. wn <end> <pad> ..``. Its ``classes`` are the words those ids index: every
word of every split of the source (a lossless table, not the model's vocabulary, which the
caption task builds from the training split alone with a minimum count).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from cnnlab.data.base import TensorImages
from cnnlab.errors import CnnlabError

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)  # ids 0, 1, 2, 3 in every table
PAD_ID, START_ID, END_ID, UNK_ID = range(4)
# a number with separators (1,000  3.5), else a run of letters/digits with an apostrophe suffix (dog's)
_WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:'[^\W_]+)?")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


class CaptionImages(TensorImages):
    """An in-memory caption split: images (N, C, H, W) uint8, labels (N, R, L) ids into ``classes``."""

    def describe(self) -> dict:
        return describe_captions(self)

    def sample_grid(self, path, n: int = 16, seed: int = 0):
        return caption_grid(self, path, n, seed)


def tokenize(text: str) -> list[str]:
    """Lower-case words (letters of any script, digits, an apostrophe suffix); punctuation,
    hyphens and stray whitespace separate words and are dropped; ``1,000`` and ``3.5`` stay whole.

    ``tokenize(" A man's 2 dogs,\tin Zürich -- 3.5 m  ")`` -> ``['a', "man's", '2', 'dogs', 'in', 'zürich', '3.5', 'm']``
    """
    return _WORD.findall(unicodedata.normalize("NFKC", text).translate(_QUOTES).lower())


@dataclass(frozen=True)
class Vocabulary:
    """Words in id order, ``SPECIALS`` first."""

    words: tuple[str, ...]

    @classmethod
    def build(cls, captions: Iterable[list[str]], min_count: int = 1) -> "Vocabulary":
        """The words seen at least ``min_count`` times, commonest first (ties alphabetical)."""
        counts = Counter(w for tokens in captions for w in tokens)
        kept = sorted((w for w, n in counts.items() if n >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls((*SPECIALS, *kept))

    def __len__(self) -> int:
        return len(self.words)

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids up to ``<end>`` as words, without ``<start>`` and ``<pad>``."""
        out = []
        for i in ids:
            if i == END_ID:
                break
            if i not in (PAD_ID, START_ID):
                out.append(self.words[i])
        return out


def word_table(captions: Iterable[list[str]]) -> list[str]:
    """Every word of ``captions`` (token lists) after the specials, sorted: a lossless id table."""
    return [*SPECIALS, *sorted({w for tokens in captions for w in tokens} - set(SPECIALS))]


def encode_references(references: list[list[str]], words: list[str], max_words: int = 0,
                      source: str = "captions") -> Tensor:
    """Caption strings per image -> ``(N, R, L)`` int64 ids into ``words``.

    R is the most references any image has; ``max_words`` (0: no limit) truncates long
    captions. An empty caption is an error naming ``source`` and the image's position.
    """
    index = {w: i for i, w in enumerate(words)}
    tokens = []
    for i, refs in enumerate(references):
        if not refs:
            raise CnnlabError(f"{source}: image {i} has no captions")
        rows = []
        for j, text in enumerate(refs):
            t = tokenize(text)
            if not t:
                raise CnnlabError(f"{source}: caption {j} of image {i} is empty ({text!r})")
            rows.append([index.get(w, UNK_ID) for w in (t[:max_words] if max_words else t)])
        tokens.append(rows)
    r = max(len(refs) for refs in tokens)
    length = max(len(t) for refs in tokens for t in refs) + 2
    out = torch.full((len(tokens), r, length), PAD_ID, dtype=torch.int64)
    for i, refs in enumerate(tokens):
        for j, t in enumerate(refs):
            out[i, j, :len(t) + 2] = torch.tensor([START_ID, *t, END_ID])
    return out


# ---------------------------------------------------------------------- what a caption split holds
def describe_captions(data) -> dict:
    """``cnnlab data info`` for a caption split: counts, the 20 commonest words, image shape."""
    from collections import Counter

    refs = data.labels  # (N, R, L)
    words = Counter(data.classes[i] for i in refs[refs > UNK_ID].tolist())
    n_refs = int((refs[:, :, 0] != PAD_ID).sum())
    return {"name": data.name, "count": len(data), "classes": list(data.classes),
            "class_counts": dict(words.most_common(20)), "references": n_refs,
            "image_shape": tuple(data.image_shape), "skipped": len(data.skipped),
            "report": list(getattr(data, "report", []))}  # what reading the files left out


def caption_grid(data, path, n: int = 16, seed: int = 0):
    """A PNG of ``n`` random images (by seed), each above its first reference caption."""
    import math
    import textwrap

    from PIL import Image, ImageDraw

    from cnnlab.images import resize, save_pil, to_pil

    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    tile, text_h, cols = 160, 56, math.ceil(math.sqrt(len(index)))
    canvas = Image.new("RGB", (cols * tile, math.ceil(len(index) / cols) * (tile + text_h)), "white")
    draw = ImageDraw.Draw(canvas)
    for k, i in enumerate(index):
        image, refs = data[i] if not hasattr(data, "images") else (data.images[i], data.labels[i])
        x, y = (k % cols) * tile, (k // cols) * (tile + text_h)
        canvas.paste(to_pil(resize(image[:3], (tile - 4, tile - 4))), (x + 2, y + 2))
        words = [data.classes[w] for w in refs.view(-1, refs.shape[-1])[0].tolist() if w > UNK_ID]
        lines = textwrap.wrap(" ".join(words), tile // 6)[:4]  # the default font: ~6 pixels a character
        draw.text((x + 2, y + tile - 2), "\n".join(lines), fill=(0, 0, 0))
    return save_pil(canvas, path)
