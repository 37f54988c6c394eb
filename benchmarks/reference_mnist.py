"""The reference: the network and training loop of pytorch/examples' ``mnist/main.py``.

Reproduced as that script runs on a CPU (``python main.py`` with its defaults): batch 64, test
batch 1000, Adadelta lr 1.0, StepLR(step_size=1, gamma=0.7), seed 1, and a DataLoader without
workers or shuffling (the example turns those on only for an accelerator) over a dataset that
builds a PIL image per item and applies ``ToTensor()`` + ``Normalize((0.1307,), (0.3081,))``,
as torchvision's ``FashionMNIST`` dataset does. Our uint8 tensors are wrapped into PIL images
per item, so the per-sample path is the same.

Used by ``fashion_mnist.py``; the clock counts training only (data loading included, test
evaluation excluded).
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms


# ---------------------------------------------------------------------------------------------
# network (verbatim from mnist/main.py)
# ---------------------------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


# ---------------------------------------------------------------------------------------------
# data: a PIL image per item, as torchvision.datasets.FashionMNIST
# ---------------------------------------------------------------------------------------------

class PILImages(torch.utils.data.Dataset):
    """uint8 (N, 1, 28, 28) images and labels, served as torchvision's MNIST datasets serve them."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.targets = images[:, 0], labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        img, target = self.images[i], int(self.targets[i])
        img = Image.fromarray(img.numpy())  # a 2-D uint8 array: mode "L", as torchvision builds it
        return self.transform(img), target


# ---------------------------------------------------------------------------------------------
# training with test accuracy against training seconds
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def test_accuracy(model: nn.Module, loader) -> float:
    model.eval()
    correct = total = 0
    for data, target in loader:
        pred = model(data).argmax(dim=1)
        correct += int((pred == target).sum())
        total += len(target)
    model.train()
    return correct / total


def train_reference(train_images, train_labels, test_images, test_labels, epochs: int = 2,
                    points_per_epoch: int = 4, limit_batches: int | None = None, log=print) -> list[dict]:
    """Train the example's Net; returns ``[{epoch, seconds, top1}]`` at ``points_per_epoch`` points
    per epoch (seconds: cumulative training time, evaluation excluded)."""
    torch.manual_seed(1)
    train_loader = torch.utils.data.DataLoader(PILImages(train_images, train_labels), batch_size=64)
    test_loader = torch.utils.data.DataLoader(PILImages(test_images, test_labels), batch_size=1000)
    model = Net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    n_batches = min(len(train_loader), limit_batches or len(train_loader))
    marks = {round(n_batches * k / points_per_epoch) for k in range(1, points_per_epoch + 1)}
    curve, seconds = [], 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        for batch_idx, (data, target) in enumerate(train_loader, 1):
            optimizer.zero_grad()
            output = model(data)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
            if (batch_idx - 1) % 10 == 0:  # the example logs every 10 batches
                loss.item()
            if batch_idx in marks:
                seconds += time.perf_counter() - t0
                top1 = test_accuracy(model, test_loader)
                curve.append({"epoch": epoch - 1 + batch_idx / n_batches, "seconds": seconds, "top1": top1})
                log(f"  reference  epoch {epoch - 1 + batch_idx / n_batches:5.2f}  {seconds:7.1f} s  "
                    f"test top-1 {top1:.4f}")
                t0 = time.perf_counter()
            if batch_idx >= n_batches:
                break
        scheduler.step()
    return curve
