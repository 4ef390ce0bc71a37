"""torch.compile (fullgraph) and CUDA paths: slow / gpu markers, off by default."""

from __future__ import annotations

import pytest
import torch

from scalerec.model import SequentialRecommender
from scalerec.model.sizes import model_config


def _model(device: str, **kw) -> SequentialRecommender:
    torch.manual_seed(0)
    cfg = model_config("tiny", vocab_size=100, max_len=16, **kw)
    model = SequentialRecommender(cfg).to(device)
    g = torch.Generator().manual_seed(0)
    table = {f: torch.randint(0, 100, (51, n), generator=g) for f, n in cfg.field_max_len.items()}
    model.set_item_table(table)
    return model.eval()


@pytest.mark.slow
def test_fullgraph_compile_matches_eager() -> None:
    model = _model("cpu")
    x = torch.randint(1, 51, (4, 16))
    x[1, 9:] = 0
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_cuda_bf16_flash_matches_fp32_and_stays_causal(norm: str) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = _model("cuda", norm=norm)
    x = torch.randint(1, 51, (8, 16), device="cuda")
    x[2, 5:] = 0
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            fast = model(x)
        y = x.clone()
        y[:, 10:] = 7
        with torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            fast_y = model(y)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast.float(), ref, rtol=0.05, atol=0.05)
    torch.testing.assert_close(fast[:, :10], fast_y[:, :10])


@pytest.mark.gpu
def test_cuda_embedding_bag_pooling_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = _model("cpu")
    ids = torch.arange(51)
    ref = model.encode_items(ids)
    torch.testing.assert_close(model.cuda().encode_items(ids.cuda()).cpu(), ref, rtol=1e-4, atol=1e-5)
