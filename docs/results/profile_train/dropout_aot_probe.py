"""What the compiled graphs of a pre-LN residual block with dropout keep for the backward (CPU; issue 24).

    cd docs/results/profile_train
    TORCH_LOGS=aot_graphs python dropout_aot_probe.py > cpu_2026-12-06_dropout_aot_graphs.log 2>&1

Why: on the GPU, xl's fused residual-add + dropout + layer-norm backward took ~4x its time in a dropout-free
profile of another run. The forward and backward graphs say whether the mask is saved (a bool tensor) or
its random numbers drawn again.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """The FFN half of `scalerec.model.transformer.Block`, pre-LN, followed by the next layer norm."""

    def __init__(self, d: int = 64) -> None:
        super().__init__()
        self.ln, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc, self.proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.proj(F.gelu(self.fc(self.ln(x)))))
        return self.ln2(x)


if __name__ == "__main__":
    torch.manual_seed(0)
    step = torch.compile(Block().train())
    x = torch.randn(8, 50, 64, requires_grad=True)
    step(x).sum().backward()
    print("torch", torch.__version__)
