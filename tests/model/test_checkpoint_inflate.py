"""``inflate_temporal_embed``: hand-written tables for 1→4, 4→8 and 4→2 in every mode.

Rows are e0..e3 = 1, 2, 3, 4 (times a per-dimension vector, so the embedding axis is checked to
stay untouched); the expected rows are the reference's (§2.1).
"""

from __future__ import annotations

import pytest
import torch

from webvid.model.checkpoint import inflate_temporal_embed

DIM = torch.tensor([1.0, -2.0, 0.5])


def table(rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows).view(1, -1, 1) * DIM.view(1, 1, -1)


CASES = {
    # (N, M, mode): rows of the result in units of e_k = k + 1
    (1, 4, "zeros"): [1, 0, 0, 0],
    (1, 4, "interp"): [1, 1, 1, 1],
    (1, 4, "bilinear"): [1, 1, 1, 1],
    (4, 8, "zeros"): [1, 2, 3, 4, 0, 0, 0, 0],
    (4, 8, "interp"): [1, 1, 2, 2, 3, 3, 4, 4],
    # e0, .75e0+.25e1, .25e0+.75e1, .75e1+.25e2, .25e1+.75e2, .75e2+.25e3, .25e2+.75e3, e3
    (4, 8, "bilinear"): [1, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4],
    (4, 2, "zeros"): [1, 2],
    (4, 2, "interp"): [1, 2],
    (4, 2, "bilinear"): [1, 2],
}


@pytest.mark.parametrize(("case", "rows"), list(CASES.items()), ids=lambda c: str(c))
def test_inflation_table(case: tuple[int, int, str], rows: list[float]) -> None:
    n, m, mode = case
    source = table([float(k + 1) for k in range(n)])
    out = inflate_temporal_embed(source, m, mode)
    assert out.shape == (1, m, 3)
    torch.testing.assert_close(out, table(rows), atol=1e-6, rtol=0)


def test_same_size_is_a_copy_and_bad_mode_is_refused() -> None:
    source = table([1.0, 2.0])
    out = inflate_temporal_embed(source, 2, "bilinear")
    assert torch.equal(out, source) and out.data_ptr() != source.data_ptr()
    with pytest.raises(ValueError, match="temporal_fix"):
        inflate_temporal_embed(source, 4, "linear")
    with pytest.raises(ValueError, match="frames, dim"):
        inflate_temporal_embed(torch.zeros(4, 3), 8)


def test_half_precision_table_keeps_its_dtype() -> None:
    out = inflate_temporal_embed(table([1.0, 2.0, 3.0, 4.0]).half(), 8, "bilinear")
    assert out.dtype == torch.float16
    assert out[0, 1, 0].item() == pytest.approx(1.25)
