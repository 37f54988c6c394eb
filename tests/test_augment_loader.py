import torch
import torch.nn.functional as F

from cnnlab.data.augment import random_flip, random_translate
from cnnlab.data.base import TensorImages
from cnnlab.data.loader import Batches


def test_translate_moves_pixels():
    img = torch.zeros(1, 1, 5, 5, dtype=torch.uint8)
    img[0, 0, 2, 2] = 255
    out = random_translate(img.repeat(64, 1, 1, 1), 2, torch.Generator().manual_seed(0))
    assert out.shape == (64, 1, 5, 5)
    assert (out.flatten(1).sum(1) >= 255).all()  # a shift of <= 2 keeps the centre pixel inside (mirrors may repeat it)
    positions = {tuple(torch.nonzero(o[0])[0].tolist()) for o in out}
    assert len(positions) > 10  # many different shifts
    assert all(abs(r - 2) <= 2 and abs(c - 2) <= 2 for r, c in positions)


def test_translate_is_a_reflect_pad_and_crop():
    x = torch.randint(0, 256, (32, 3, 6, 7), dtype=torch.uint8)
    out = random_translate(x, 2, torch.Generator().manual_seed(2))
    padded = F.pad(x.float(), (2, 2, 2, 2), mode="reflect")
    for xi, oi, pi in zip(x, out, padded):  # each output is one of the 25 crops of the reflect-padded image
        crops = [pi[:, r:r + 6, c:c + 7] for r in range(5) for c in range(5)]
        assert any(torch.equal(oi.float(), crop) for crop in crops)
    assert not torch.equal(out, x)
    assert random_translate(x[:, :, :3, :3], 8, torch.Generator().manual_seed(0)).shape == (32, 3, 3, 3)  # shift > size


def test_flip_is_a_mirror_or_identity_and_seeded():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.uint8).view(2, 1, 2, 3).repeat(16, 1, 1, 1)
    a = random_flip(x, torch.Generator().manual_seed(1))
    b = random_flip(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    for xi, ai in zip(x, a):
        assert torch.equal(ai, xi) or torch.equal(ai, xi.flip(-1))
    assert not torch.equal(a, x)


def test_batches_cover_every_index_and_shard_for_ddp():
    data = TensorImages(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10), ["c"] * 10)
    full = Batches(data, 4, torch.device("cpu"), shuffle=True, seed=3)
    seen = torch.cat([y for _, y in full.epoch(0)])
    assert sorted(seen.tolist()) == list(range(10))
    assert not torch.equal(seen, torch.cat([y for _, y in full.epoch(1)]))  # new order per epoch
    shards = [torch.cat([y for _, y in Batches(data, 4, torch.device("cpu"), True, 3, r, 2).epoch(0)])
              for r in (0, 1)]
    assert sorted(torch.cat(shards).tolist()) == list(range(10))
    resumed = torch.cat([y for _, y in full.epoch(0, start_step=1)])
    assert torch.equal(resumed, seen[4:])
