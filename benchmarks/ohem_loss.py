"""OHEM against plain cross-entropy: the loss forward + backward for one CamVid-recipe batch
(8 x 11 classes x 288 x 384), same process, printed as a ratio.

    python benchmarks/ohem_loss.py
"""
import time, torch, torch.nn.functional as F
from cnnlab.tasks.segment import ohem_cross_entropy
torch.manual_seed(0)
logits = torch.randn(8, 11, 288, 384, requires_grad=True)
masks = torch.randint(0, 11, (8, 288, 384)); masks[:, :20] = 255
w = torch.rand(11) + 0.5
def t(fn, n=5):
    fn()
    s = time.perf_counter()
    for _ in range(n):
        logits.grad = None; fn().backward()
    return (time.perf_counter() - s) / n * 1000
plain = t(lambda: F.cross_entropy(logits, masks, weight=w, ignore_index=255))
ohem = t(lambda: ohem_cross_entropy(logits, masks, w, 0.7))
print(f"loss fwd+bwd per step: plain {plain:.0f} ms  ohem {ohem:.0f} ms  ratio {ohem/plain:.2f}x")
