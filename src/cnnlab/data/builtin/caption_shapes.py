"""The ``shapes`` scenes for captioning: 1..3 coloured shapes, several references each.

    train = load_dataset("shapes", "train", task="caption")   # 10,000 64x64 scenes
    train.labels.shape        # (10000, R, L) token ids into train.classes (see caption_text)

References (``cnnlab.data.builtin.shapes.scene_captions``) list the objects with size and colour,
count them by shape and by colour, and relate neighbours ("left of", "above"), so a model
that does not look at the image cannot score well: the commonest sentence names one
arrangement of six shapes x six colours x two sizes. ``names_every_object`` checks a
generated caption against the scene's objects.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from cnnlab.data.builtin.shapes import (COLORS, COUNT_WORDS, PLURALS, POSITIONS, SHAPES, SIZES, ShapeObject,
                                Scene, generate_scenes)
from cnnlab.data.caption_text import SPECIALS, CaptionImages, encode_references, tokenize
from cnnlab.data.registry import SPLITS, check_image_size, register_dataset
from cnnlab.errors import CnnlabError

CAPTION_SPLIT_SIZES = {"train": 10_000, "val": 500, "test": 1000}
_PLURAL = {PLURALS.get(s, s + "s"): s for s in SHAPES}
_GRAMMAR = "a and there is to the of left right above below shape shapes"


def shapes_words() -> list[str]:
    """Every word the scene captions can use, after the specials: the dataset's id table."""
    words = {*COUNT_WORDS, *SHAPES, *_PLURAL, *COLORS, *SIZES, *_GRAMMAR.split()}
    words |= {w for row in POSITIONS for p in row for w in tokenize(p)}
    return [*SPECIALS, *sorted(words)]


def caption_scenes(scenes: list[Scene], name: str) -> CaptionImages:
    """Scenes -> images (N, 3, H, W) uint8 with their references as token ids."""
    import torch

    images = torch.stack([s.image for s in scenes])
    words = shapes_words()
    labels = encode_references([s.captions for s in scenes], words, source=name)
    return CaptionImages(images, labels, words, name=name)


def split_scenes(split: str, seed: int = 0, image_size: int = 64, n: int | None = None) -> list[Scene]:
    """The scenes of ``split``, each split from its own seed stream derived from (seed, split)."""
    if split not in SPLITS:
        raise CnnlabError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    stream = int(np.random.SeedSequence([seed, SPLITS.index(split), 0xCA97]).generate_state(1)[0])
    return generate_scenes(n or CAPTION_SPLIT_SIZES[split], stream, size=image_size)


@register_dataset("shapes", description="scenes of 1-3 coloured shapes (64x64 RGB) with 4-6 reference "
                  "captions each (objects, colours, sizes, counts, relations), train 10000 / val 500 / "
                  "test 1000", tasks=("caption",))
def shapes_captions(split: str, seed: int = 0, *, image_size: int = 64) -> CaptionImages:
    """Split ``split`` of the shapes captions: labels (N, R, L) token ids, classes the word table."""
    check_image_size("shapes captions", image_size, 32)
    return caption_scenes(split_scenes(split, seed, image_size), f"shapes-captions/{split}")


# ---------------------------------------------------------------------------------------
# Checking a generated caption against the scene
# ---------------------------------------------------------------------------------------


def _mentions(caption: str) -> list[tuple[int, bool, str | None, str | None, str | None]]:
    """Noun phrases as (count, exact, size, colour, shape): "two circles" -> (2, True, None,
    None, "circle"); "a small red shape" -> (1, False, "small", "red", None)."""
    out, tokens = [], tokenize(caption)
    for i, w in enumerate(tokens):
        if w not in ("a", *COUNT_WORDS):
            continue
        j, size, colour = i + 1, None, None
        if j < len(tokens) and tokens[j] in SIZES:
            size, j = tokens[j], j + 1
        if j < len(tokens) and tokens[j] in COLORS:
            colour, j = tokens[j], j + 1
        if j < len(tokens):
            noun = tokens[j]
            shape = noun if noun in SHAPES else _PLURAL.get(noun)
            if shape or noun in ("shape", "shapes"):
                count = 1 if w == "a" else COUNT_WORDS.index(w)
                out.append((count, w != "a", size, colour, shape))
    return out


def names_every_object(caption: str, objects: list[ShapeObject]) -> bool:
    """True when every object is named by its shape word and every noun phrase is true:
    "a small red circle" needs such an object; "two circles" exactly two circles."""
    mentions = _mentions(caption)
    named = Counter()
    for count, exact, size, colour, shape in mentions:
        match = [o for o in objects if size in (None, o.size) and colour in (None, o.color)
                 and shape in (None, o.shape)]
        if (len(match) != count) if exact else not match:
            return False
        if shape:
            named.update(id(o) for o in match)
    return all(named[id(o)] for o in objects)
