"""Image captioning: a CNN encoder's feature maps feed an LSTM that writes the sentence.

    model = get_model("show_attend_tell", vocab_size=40, encoder="lecture_cnn")
    logits, alphas = model(images, words)   # (B, T, V), (B, T, h*w): teacher forcing

* Show-and-Tell (Vinyals et al. 2015): the pooled image vector is the LSTM's first input;
  the words follow.
* Show-Attend-and-Tell (Xu et al. 2015): at each word, soft (additive) attention over the
  h x w positions of the feature map gives a context vector, gated and fed with the word.

The encoder is any registered classifier without its head (``forward_features``), trained
with the decoder or frozen (``freeze_encoder``). Decoding (greedy, beam search) is in
``cnnlab.models.caption_search``; it drives ``encode``, ``start`` and ``step``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnlab.errors import CnnlabError
from cnnlab.models.registry import get_model, model_info, register_model

State = tuple[Tensor, Tensor]  # LSTM (h, c), each (B, hidden)
Memory = tuple[Tensor, ...]    # what every step reads from the image


def conv_features(name: str, in_channels: int = 3, pretrained: bool = False, **kwargs) -> nn.Module:
    """The registered classifier ``name`` with its head replaced by identity (features only)."""
    info = model_info(name)
    if info.task != "classify":
        raise CnnlabError(f"encoder {name!r} is a {info.task} model; expected a classifier")
    model = get_model(name, num_classes=1, in_channels=in_channels, pretrained=pretrained, **kwargs)
    if not hasattr(model, "forward_features"):
        raise CnnlabError(f"encoder {name!r} has no forward_features (no features/head split)")
    owner, _, attr = info.head.rpartition(".")
    setattr(model.get_submodule(owner), attr, nn.Identity())  # the registry names the head
    return model


class Captioner(nn.Module):
    """CNN encoder + LSTM decoder, with (``attention=True``) or without soft attention."""

    def __init__(self, encoder: nn.Module, vocab_size: int, *, attention: bool, in_channels: int = 3,
                 embed_dim: int = 64,       # word embedding width
                 hidden_dim: int = 256,     # LSTM state width
                 attention_dim: int = 128,  # width of the additive attention's hidden layer
                 dropout: float = 0.2,      # before the word classifier
                 freeze_encoder: bool = False):
        super().__init__()
        self.encoder, self.attention = encoder, attention
        self.vocab_size = vocab_size
        c = self._feature_channels(in_channels)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        if attention:
            self.init_h, self.init_c = nn.Linear(c, hidden_dim), nn.Linear(c, hidden_dim)
            self.att_features = nn.Linear(c, attention_dim)
            self.att_hidden = nn.Linear(hidden_dim, attention_dim)
            self.att_score = nn.Linear(attention_dim, 1)
            self.gate = nn.Linear(hidden_dim, c)  # beta: how much of the context to let in
            self.cell = nn.LSTMCell(embed_dim + c, hidden_dim)
        else:
            self.image_embed = nn.Linear(c, embed_dim)
            self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_dim, vocab_size)
        if freeze_encoder:
            self.encoder.requires_grad_(False)

    def _feature_channels(self, in_channels: int) -> int:
        was = self.encoder.training
        with torch.no_grad():
            c = self.encoder.eval().forward_features(torch.zeros(1, in_channels, 64, 64)).shape[1]
        self.encoder.train(was)
        return c

    # ------------------------------------------------------------------ stepping
    def encode(self, images: Tensor, encoder_features=None) -> Tensor:
        """Normalised images (B, C, H, W) -> feature vectors (B, h*w, C') at each position;
        ``encoder_features`` stands in for the encoder's ``forward_features`` (a folded copy)."""
        f = (encoder_features or self.encoder.forward_features)(images)  # (B, C', h, w)
        return f.flatten(2).transpose(1, 2).float()  # (B, h*w, C')

    def start(self, features: Tensor) -> tuple[Memory, State]:
        """What each step reads from the image, and the LSTM's first state."""
        mean = features.mean(1)  # (B, C')
        if self.attention:
            memory = (features, self.att_features(features))  # (B, P, C'), (B, P, A)
            return memory, (torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)))
        _, (h, c) = self.lstm(self.image_embed(mean)[:, None])  # x_{-1} = the image
        return (), (h[0], c[0])

    def step(self, memory: Memory, state: State, words: Tensor) -> tuple[Tensor, State, Tensor | None]:
        """One word (B,) -> logits for the next (B, V), the new state, attention (B, P) or None."""
        x = self.embed(words)  # (B, E)
        h, c = state
        if self.attention:
            features, projected = memory
            e = self.att_score(torch.tanh(projected + self.att_hidden(h)[:, None])).squeeze(2)  # (B, P)
            alpha = e.softmax(1)
            context = (alpha[:, :, None] * features).sum(1)  # (B, C')
            context = torch.sigmoid(self.gate(h)) * context
            h, c = self.cell(torch.cat([x, context], 1), (h, c))
        else:
            alpha = None
            _, (h, c) = self.lstm(x[:, None], (h[None], c[None]))
            h, c = h[0], c[0]
        return self.classifier(self.dropout(h)), (h, c), alpha

    # ------------------------------------------------------------------ teacher forcing
    def forward(self, images: Tensor | None, words: Tensor, features: Tensor | None = None
                ) -> tuple[Tensor, Tensor | None]:
        """images (B, C, H, W), words (B, T) from <start> -> logits (B, T, V), alphas (B, T, P).

        features: the encoder's output ``encode(images)`` (B, h*w, C') when it is at hand (a
        frozen encoder's features computed once per image); ``images`` is then not read."""
        memory, state = self.start(self.encode(images) if features is None else features)
        if not self.attention:
            h, c = state
            out, _ = self.lstm(self.embed(words), (h[None], c[None]))  # (B, T, H)
            return self.classifier(self.dropout(out)), None
        logits, alphas = [], []
        for t in range(words.shape[1]):
            step_logits, state, alpha = self.step(memory, state, words[:, t])
            logits.append(step_logits)
            alphas.append(alpha)
        return torch.stack(logits, 1), torch.stack(alphas, 1)


def _captioner(attention: bool, vocab_size: int, in_channels: int, pretrained: bool, encoder: str,
               encoder_args: dict | None, freeze_encoder: bool, **kwargs) -> Captioner:
    backbone = conv_features(encoder, in_channels, pretrained, **(encoder_args or {}))
    return Captioner(backbone, vocab_size, attention=attention, in_channels=in_channels,
                     freeze_encoder=freeze_encoder, **kwargs)


@register_model("show_tell", input_size=(3, 64, 64), task="caption",
                paper="Vinyals et al. 2015, Show and Tell", tags=("caption",))
def show_tell(vocab_size: int = 1000, in_channels: int = 3, pretrained: bool = False,
              encoder: str = "lecture_cnn", encoder_args: dict | None = None, freeze_encoder: bool = False,
              **kwargs) -> Captioner:
    """Show-and-Tell on ``encoder``'s features; ``pretrained`` loads the encoder's offline weights."""
    return _captioner(False, vocab_size, in_channels, pretrained, encoder, encoder_args, freeze_encoder, **kwargs)


@register_model("show_attend_tell", input_size=(3, 64, 64), task="caption",
                paper="Xu et al. 2015, Show, Attend and Tell", tags=("caption", "attention"))
def show_attend_tell(vocab_size: int = 1000, in_channels: int = 3, pretrained: bool = False,
                     encoder: str = "lecture_cnn", encoder_args: dict | None = None,
                     freeze_encoder: bool = False, **kwargs) -> Captioner:
    """Show-Attend-and-Tell on ``encoder``'s feature map (soft attention at each word)."""
    return _captioner(True, vocab_size, in_channels, pretrained, encoder, encoder_args, freeze_encoder, **kwargs)
