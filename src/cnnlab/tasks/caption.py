"""Image captioning: a CNN encoder and an LSTM decoder write a sentence about the image.

Batches arrive as (images uint8 (B, C, H, W), references (B, R, L) ids into the dataset's
word table, see ``cnnlab.data.caption_text``). Training picks one reference per image per
step and trains the decoder by teacher forcing (cross-entropy on each next word); evaluation
writes captions by beam search and scores them against all references: corpus BLEU-1..4
(``score`` = BLEU-4) and CIDEr-D. The vocabulary, built from the training captions with a
minimum word count, travels inside the checkpoint.

A frozen encoder (``freeze_backbone: true``, e.g. an ImageNet-pretrained one) gives the same
features for an image every epoch: training and evaluation compute them once per image and keep
them (``FeatureCache``, one per run), so each epoch after the first runs only the LSTM decoder.

    cnnlab train --task caption --data shapes --config recipes/caption-shapes.yaml
    cnnlab predict runs/cap/best.pt --task caption scene.png --beam 5 --attention
"""
from __future__ import annotations

import copy
import hashlib
import weakref
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnlab.data.caption_text import END_ID, PAD_ID, START_ID, UNK_ID, Vocabulary
from cnnlab.runtime.distributed import Dist
from cnnlab.errors import CnnlabError
from cnnlab.models import get_model, model_info
from cnnlab.models.caption_search import beam_search
from cnnlab.models.fold import fold_batchnorm
from cnnlab.tasks.base import Task, clean_names
from cnnlab.tasks.caption_metrics import caption_metrics
from cnnlab.tasks.options import CaptionOptions
from cnnlab.tasks.tensors import input_stats, normalise

DEFAULT_DECODER = "show_attend_tell"  # when --model names a classifier, it becomes the encoder


class FeatureCache:
    """A frozen encoder's features per image, computed once (in eval mode, without gradients); a
    run holds one (``CaptionTask.new_cache``) and passes it to training and evaluation.

    Keys are the uint8 pixels' digest, so any batch order, split or DataLoader finds them; the
    cache empties itself for another encoder, and when weights are loaded into its encoder (a
    checkpoint: ``load_state_dict``, seen by a hook). At most ``limit_bytes`` are kept (then the
    rest is computed each time, as without a cache). Features come from a copy of the encoder with
    its BatchNorms folded into its convolutions (``fold``).
    """

    def __init__(self, limit_bytes: int = 2 << 30):
        self.limit_bytes, self.bytes = limit_bytes, 0
        self.store: dict[bytes, Tensor] = {}
        self.encoder: nn.Module | None = None  # whose features these are
        self.stale = True                      # the encoder's weights are newer than ``store``
        self.hook = None                       # the encoder's load_state_dict hook (marks ``stale``)
        self.folded: nn.Module | None = None   # the encoder's forward_features with BatchNorm folded
        self.hits = self.misses = 0

    @staticmethod
    def frozen(model: nn.Module) -> bool:
        """Whether ``model`` (a Captioner) has an encoder without trainable parameters."""
        encoder = getattr(model, "encoder", None)
        return encoder is not None and not any(p.requires_grad for p in encoder.parameters())

    def features(self, model: nn.Module, images: Tensor, prepare) -> Tensor:
        """(B, h*w, C') features of uint8 ``images`` (B, C, H, W); ``prepare`` normalises them."""
        encoder = model.encoder
        if encoder is not self.encoder:
            self._follow(encoder)
        if self.stale:  # another encoder, or new weights in it
            self.store.clear()
            self.bytes, self.stale = 0, False
            self.folded = fold_batchnorm(encoder, "forward_features")
        keys = [hashlib.blake2b(memoryview(img.contiguous().cpu().numpy()).cast("B"), digest_size=16).digest()
                for img in images]
        missing = sorted({i for i, k in enumerate(keys) if k not in self.store})
        computed = {}
        if missing:
            was = encoder.training
            encoder.eval()
            with torch.no_grad():
                new = model.encode(prepare(images[missing]), self.folded)  # (M, P, C')
            encoder.train(was)
            for i, f in zip(missing, new):
                computed[keys[i]] = f
                if self.bytes + f.numel() * f.element_size() <= self.limit_bytes:
                    self.store[keys[i]] = f.clone()
                    self.bytes += f.numel() * f.element_size()
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        return torch.stack([self.store.get(k, computed.get(k)) for k in keys])

    def _follow(self, encoder: nn.Module) -> None:
        """Keep ``encoder``'s features from now on, and forget them when weights are loaded into it."""
        if self.hook is not None:
            self.hook.remove()
        cache = weakref.ref(self)  # the hook does not keep the cache alive

        def weights_loaded(module, incompatible_keys):
            if cache() is not None:
                cache().stale = True

        self.hook = encoder.register_load_state_dict_post_hook(weights_loaded)
        weakref.finalize(self, self.hook.remove)
        self.encoder, self.stale = encoder, True


class CaptionTask(Task):
    """Captioning with vocabulary ``vocab``; ``words`` is the data's id table (its ``classes``).

    mean/std: per-channel normalisation on the 0..1 scale; input_shape: (C, H, W) fed to the
    encoder; max_len: most words a caption may have; beam_size, length_penalty: decoding for
    evaluation and the default for prediction; label_smoothing: of the next-word cross-entropy;
    flip: mirror training images at random (captions rarely say left or right); attention_reg: the
    weight of Show-Attend-and-Tell's doubly stochastic attention penalty, which asks every image
    region to be looked at about once over a caption (the last three: training only).
    """

    name = "caption"
    Options = CaptionOptions
    score_label = "BLEU-4"
    epoch_metrics = ("bleu4",)
    # why `cnnlab export` refuses this task (None: it exports, parity-checked)
    export_refusal = ("a caption is a search over an LSTM decoder, not one graph; only the encoder "
                      "would export")
    explainable = False  # explain opens up classifiers only

    def __init__(self, words: list[str], vocab: list[str], mean: list[float], std: list[float],
                 input_shape: tuple[int, int, int], max_len: int = 20, beam_size: int = 3,
                 length_penalty: float = 1.0, label_smoothing: float = 0.0, flip: bool = False,
                 attention_reg: float = 0.0):
        self.classes, self.vocab = clean_names(words, "words"), Vocabulary(tuple(clean_names(vocab, "vocab")))
        self.mean, self.std = list(mean), list(std)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.max_len, self.beam_size, self.length_penalty = max_len, beam_size, length_penalty
        self.label_smoothing, self.flip, self.attention_reg = label_smoothing, flip, attention_reg
        index = self.vocab.index()
        self._remap = torch.tensor([index.get(w, UNK_ID) for w in self.classes])  # data id -> vocab id
        self.reference_words: tuple[int, int] | None = None  # (outside the vocabulary, all): another dataset

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_data(cls, cfg, train) -> "CaptionTask":
        refs = _references(train)  # (N, R, L) ids into train.classes
        words = list(train.classes)
        tokens = [[words[i] for i in row if i > UNK_ID] for row in refs.flatten(0, 1).tolist()]
        vocab = Vocabulary.build(tokens, min_count=cfg.task_config.min_word_count)  # CaptionConfig
        c, h, w = train.image_shape
        if cfg.image_size:
            h = w = cfg.image_size
        encoder = _encoder_name(cfg)
        mean, std = input_stats(cfg, encoder, train)
        if cfg.pretrained:
            c = model_info(encoder).input_size[0]
        return cls(words, list(vocab.words), mean, std, (c, h, w), max_len=refs.shape[-1] - 2,
                   label_smoothing=cfg.label_smoothing, flip=cfg.flip, attention_reg=cfg.task_config.attention_reg)

    @classmethod
    def from_state(cls, state: dict) -> "CaptionTask":
        return cls(state["words"], state["vocab"], state["mean"], state["std"], tuple(state["input_shape"]),
                   state["max_len"], state["beam_size"], state["length_penalty"], state.get("label_smoothing", 0.0),
                   state.get("flip", False), state.get("attention_reg", 0.0))

    def state(self) -> dict:
        return {"name": self.name, "words": self.classes, "vocab": list(self.vocab.words),
                "mean": self.mean, "std": self.std, "input_shape": list(self.input_shape),
                "max_len": self.max_len, "beam_size": self.beam_size, "length_penalty": self.length_penalty,
                "label_smoothing": self.label_smoothing, "flip": self.flip, "attention_reg": self.attention_reg}

    def build_model(self, cfg) -> nn.Module:
        name, kwargs = cfg.model, dict(cfg.model_args)
        if _task_of(name) == "classify":
            name, kwargs = DEFAULT_DECODER, {"encoder": cfg.model, **kwargs}
        kwargs["freeze_encoder"] = bool(cfg.freeze_backbone or kwargs.get("freeze_encoder", False))
        return get_model(name, vocab_size=len(self.vocab), in_channels=self.input_shape[0],
                         pretrained=cfg.pretrained, **kwargs)

    def for_data(self, data, source: str) -> "CaptionTask":
        """Any captions set is scored: its references are read with its own words, and those
        the model's vocabulary lacks count as misses (``unknown_reference_words`` says how many)."""
        if list(data.classes) == self.classes:
            return self
        other = copy.copy(self)
        other.classes = list(data.classes)
        index = self.vocab.index()
        other._remap = torch.tensor([index.get(w, UNK_ID) for w in other.classes])
        refs = _references(data)
        used = refs[refs > UNK_ID].tolist()  # every reference word, as ids into the data's words
        other.reference_words = (sum(other.classes[i] not in index for i in used), len(used))
        return other

    def new_cache(self) -> FeatureCache:
        """The run's cache of a frozen encoder's features (training and evaluation share it)."""
        return FeatureCache()

    # ------------------------------------------------------------------ tensors
    def prepare(self, images: Tensor) -> Tensor:
        """uint8 (B, C, H, W) on the device -> normalised float encoder input."""
        return normalise(images, self.input_shape, self.mean, self.std, self.channels_last)

    def to_vocab(self, ids: Tensor) -> Tensor:
        """Data ids (any shape) -> vocabulary ids (words below the minimum count -> <unk>)."""
        if self._remap.device != ids.device:
            self._remap = self._remap.to(ids.device)
        return self._remap[ids]

    def training_step(self, model, batch, generator, *, cache: FeatureCache | None = None):
        images, refs = batch
        refs = refs[:, None] if refs.ndim == 2 else refs  # (B, R, L)
        valid = (refs[:, :, 0] != PAD_ID).float()  # (B, R) which references exist
        pick = torch.multinomial(valid, 1, generator=generator).squeeze(1)  # one per image
        seq = self.to_vocab(refs[torch.arange(len(refs), device=refs.device), pick])  # (B, L)
        seq = seq[:, :int((seq != PAD_ID).sum(1).max())]
        inputs, targets = seq[:, :-1], seq[:, 1:]  # teacher forcing: predict word t+1 from words <= t
        if self.flip:  # each mirrored image's features are cached too (two variants per image)
            mirror = torch.rand(len(images), generator=generator, device=images.device) < 0.5
            images = torch.where(mirror[:, None, None, None], images.flip(-1), images)
        core = _unwrap(model)
        if FeatureCache.frozen(core):  # the encoder's features once per image (without a cache: each step)
            cache = cache if cache is not None else FeatureCache(limit_bytes=0)
            logits, alphas = model(None, inputs, features=cache.features(core, images, self.prepare))
        else:
            logits, alphas = model(self.prepare(images), inputs)  # (B, T, V), (B, T, P) or None
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=PAD_ID,
                               label_smoothing=self.label_smoothing)
        mask = targets != PAD_ID
        if self.attention_reg and alphas is not None:  # sum_i (1 - sum_t alpha_ti)^2 over the caption's words
            seen = (alphas.float() * mask[..., None]).sum(1)  # (B, P)
            loss = loss + self.attention_reg * ((1 - seen) ** 2).sum(1).mean()
        correct = ((logits.argmax(-1) == targets) & mask).sum()
        return {"loss": loss}, {"correct": correct, "count": mask.sum()}  # device tensors: no host sync

    # ------------------------------------------------------------------ decoding
    @torch.no_grad()
    def generate(self, model: nn.Module, images: Tensor, beam: int | None = None, max_len: int | None = None,
                 length_penalty: float | None = None, n_best: int | None = None,
                 cache: FeatureCache | None = None) -> list[list[dict]]:
        """Beam search (beam 1: greedy) on uint8 images (B, C, H, W): per image the ``n_best``
        captions, best first, each ``{"ids", "words", "score", "logprob", "alphas"}``.

        cache: take a frozen encoder's features from (and keep them in) this cache (evaluation
        during training reads the same images every epoch)."""
        beam = self.beam_size if beam is None else beam
        if beam < 1 or (max_len is not None and max_len < 1):
            raise CnnlabError(f"--beam {beam} and --max-len {max_len}: expected positive integers")
        model.eval()
        use_cache = cache is not None and FeatureCache.frozen(model)
        features = cache.features(model, images, self.prepare) if use_cache else None
        beams = beam_search(model, None if use_cache else self.prepare(images), features=features,
                            start=START_ID, end=END_ID,
                            beam=beam, max_len=max_len or self.max_len + 1,
                            length_penalty=self.length_penalty if length_penalty is None else length_penalty,
                            banned=(PAD_ID, START_ID, UNK_ID), n_best=n_best)
        for image_beams in beams:
            for b in image_beams:
                b["words"] = self.vocab.decode(b["ids"])
        return beams

    def captions(self, model: nn.Module, batches, beam: int | None = None, **options) -> tuple[list[str], list[list[str]]]:
        """Generated captions and reference sets (strings) for every image of ``batches``."""
        hyps, refs = [], []
        for images, tokens in batches.epoch(0):
            hyps += [" ".join(b[0]["words"]) for b in self.generate(model, images, beam, **options)]
            tokens = tokens[:, None] if tokens.ndim == 2 else tokens
            refs += [[" ".join(self.classes[i] for i in row if i >= UNK_ID)
                      for row in image if row[0] != PAD_ID] for image in tokens.tolist()]
        return hyps, refs

    # ------------------------------------------------------------------ metrics
    @torch.no_grad()
    def evaluate(self, model, batches, dist: Dist, *, cache: FeatureCache | None = None, tta: int = 0) -> dict:
        """BLEU-1..4 and CIDEr-D of beam-search captions against all references; a frozen encoder's
        features through ``cache`` (the run's; without one, this evaluation's own)."""
        hyps, refs = self.captions(model, batches, cache=cache if cache is not None else FeatureCache())
        if dist.enabled:
            import torch.distributed as td

            parts = [None] * dist.world
            td.all_gather_object(parts, (hyps, refs))
            hyps = [h for p in parts for h in p[0]]
            refs = [r for p in parts for r in p[1]]
        metrics = caption_metrics(hyps, refs)
        if self.reference_words is not None:
            metrics["unknown_reference_words"], metrics["reference_words"] = self.reference_words
        return metrics

    # ------------------------------------------------------------------ prediction
    def predict(self, lm, images: list, options: CaptionOptions) -> list[dict]:
        """``[{"image", "caption", "beams": [{"caption", "score", "logprob"}], "attention"?, ...}]``.

        attention: write ``<out>/<image stem>_attention.png``, the image under each word's
        attention map (Show-Attend-and-Tell models only), and return the maps themselves:
        ``words``, ``grid`` (h, w) and ``word_attention``, one (h, w) grid of weights per word
        (each sums to 1 over the encoder's h x w positions; see ``word_attention``).
        """
        attention, out = options.attention, options.out or "."
        if attention and not getattr(lm.model, "attention", False):
            raise CnnlabError(f"--attention: {lm.name} has no attention (use a show_attend_tell model)")
        batch = torch.stack([lm.read(p) for p in images]).to(lm.device)  # (B, C, H, W) uint8
        beams = self.generate(lm.model, batch, options.beam, options.max_len, options.length_penalty)
        results = []
        for path, image, image_beams in zip(images, batch, beams):
            best = image_beams[0]
            r = {"image": str(path), "caption": " ".join(best["words"]),
                 "beams": [{"caption": " ".join(b["words"]), "score": round(b["score"], 4),
                            "logprob": round(b["logprob"], 4)} for b in image_beams]}
            if attention:
                from cnnlab.tasks.caption_plots import plot_attention

                grid = self.feature_grid(lm.model, image[None])
                target = Path(out) / f"{Path(str(path)).stem}_attention.png"
                r["attention"] = str(plot_attention(image.cpu(), best["words"], best["alphas"], grid, target))
                r.update(word_attention(best["words"], best["alphas"], grid))
            results.append(r)
        return results

    @torch.no_grad()
    def feature_grid(self, model: nn.Module, images: Tensor) -> tuple[int, int]:
        """(h, w) of the encoder's feature map: the grid attention weights live on."""
        return tuple(model.encoder.forward_features(self.prepare(images)).shape[-2:])

    # ------------------------------------------------------------------ rendering
    def headline(self, m: dict) -> str:
        return f"BLEU-4 {m['bleu4']:.4f}  BLEU-1 {m['bleu1']:.4f}  CIDEr-D {m['cider']:.3f}"

    def format_metrics(self, m: dict) -> str:
        return (f"{m['data']} / {m['split']}: {m['count']} images\n"
                f"BLEU-1 {m['bleu1']:.4f}   BLEU-2 {m['bleu2']:.4f}   BLEU-3 {m['bleu3']:.4f}   "
                f"BLEU-4 {m['bleu4']:.4f}   CIDEr-D {m['cider']:.3f}"
                + (f"\n{m['unknown_reference_words']} of the {m['reference_words']} reference words "
                   f"({m['unknown_reference_words'] / max(m['reference_words'], 1):.1%}) are outside the model's "
                   f"vocabulary: it cannot produce them" if "reference_words" in m else ""))

    def format_prediction(self, r: dict) -> str:
        return f"{r['image']}: {r['caption']}" + (f"\n  attention per word: {r['attention']}" if r.get("attention") else "")

    def write_plots(self, run_dir, history, model, data, metrics) -> list[str]:
        from cnnlab.tasks import caption_plots

        return caption_plots.write_all(self, run_dir, history, model, data)


# ---------------------------------------------------------------------- helpers
def word_attention(words: list[str], alphas: Tensor | None, grid: tuple[int, int]) -> dict:
    """The attention weights behind each word of a caption, as JSON: ``{"words", "grid": [h, w],
    "word_attention": [(h, w) nested lists, one per word]}``. ``alphas`` (len(words) + 1, h*w) is
    the beam's history (the last row chose <end>); its row t is where the decoder looked when it
    wrote word t (the Show, Attend and Tell figure)."""
    h, w = grid
    if alphas is None:
        return {}
    maps = alphas[:len(words)].float().reshape(len(words), h, w)  # (T, h, w)
    return {"words": list(words), "grid": [h, w],
            "word_attention": [[[round(float(v), 6) for v in row] for row in m] for m in maps]}


def _references(data) -> Tensor:
    refs = data.labels
    if refs.ndim not in (2, 3) or refs.dtype != torch.int64:
        raise CnnlabError(f"{data.name}: caption labels must be int64 token ids (N, R, L) or (N, L), "
                          f"got {refs.dtype} {tuple(refs.shape)}")
    return refs[:, None] if refs.ndim == 2 else refs


def _unwrap(model: nn.Module) -> nn.Module:
    """The Captioner inside DDP (``module``) and/or torch.compile (``_orig_mod``) wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


def _task_of(name: str) -> str:
    try:
        return model_info(name).task
    except KeyError as e:
        raise CnnlabError(e.args[0]) from None


def _encoder_name(cfg) -> str:
    return cfg.model if _task_of(cfg.model) == "classify" else cfg.model_args.get("encoder", "lecture_cnn")
