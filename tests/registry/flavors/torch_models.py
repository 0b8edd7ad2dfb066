"""Modules for the torch flavor tests, importable as ``tests.registry.flavors.torch_models``."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Scriptable; rebuilt from ``get_config()``."""

    def __init__(self, n_in: int = 4, n_hidden: int = 8, n_out: int = 3) -> None:
        super().__init__()
        self.n_in, self.n_hidden, self.n_out = n_in, n_hidden, n_out
        self.net = nn.Sequential(
            nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(n_hidden, n_out)
        )

    def get_config(self) -> dict[str, int]:
        return {"n_in": self.n_in, "n_hidden": self.n_hidden, "n_out": self.n_out}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SummedHeads(nn.Module):
    """Not scriptable (a generator expression) but traceable."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(head(x) for head in self.heads)


class Gated(nn.Module):
    """Neither scriptable (a generator expression) nor traceable (a branch on a tensor's value).

    Its constructor takes no arguments, so the flavor falls back to safetensors + a code reference.
    """

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.mean() > 0):
            return sum(head(x) for head in self.heads)
        return self.heads[0](x)


class NeedsArguments(Gated):
    """Like `Gated`, but its constructor needs an argument and there is no ``get_config()``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width


class BadConfig(MLP):
    """``get_config()`` that does not rebuild the same architecture."""

    def get_config(self) -> dict[str, int]:
        return {"n_in": self.n_in, "n_hidden": self.n_hidden + 1, "n_out": self.n_out}
