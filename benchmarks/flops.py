"""Floating-point operations of one L-BFGS step: one loss and gradient evaluation of eq. 7.

The count is the work of the model, the same for every implementation (so achieved GFLOP/s
compare like with like); a multiply-add is 2 FLOPs.

- Each 3x3 convolution up to the deepest layer used (conv5_1 for the paper's layers: 13 convs),
  forward: 2 * C_in * C_out * 9 * H * W (H, W: the size of its output; padding counted as dense).
- Its backward: the gradient with respect to its input only, the same 2 * C_in * C_out * 9 * H * W.
  The network is frozen (``requires_grad=False`` in impasto and in pastiche), so PyTorch computes
  no weight gradients at all, conv1_1's included; the usual training rule "backward = 2x forward"
  would overstate the work by half. conv1_1's input gradient *is* computed: it is the image's.
- The Gram matrix of the generated image at each style layer, forward 2 * C^2 * M (M = H * W);
  backward 4 * C^2 * M, as autograd does it (one C x M product for each operand of F F^T).

Not counted (together well under 1 %): ReLU, pooling, the loss reductions, the L-BFGS update, and
work an implementation repeats needlessly (pastiche recomputes the style images' Gram matrices at
every step).
"""

from __future__ import annotations

__all__ = ["PAPER_LAYERS", "step_flops"]

# Convolutions per block and their output channels (VGG19 configuration "E").
_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
PAPER_LAYERS: dict[str, tuple[str, ...]] = {
    "content": ("conv4_2",),
    "style": ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
}


def _convs(width: int, height: int) -> list[tuple[str, int, int, int, int]]:
    """(name, C_in, C_out, H, W) of every convolution in order, pooling (floor) between blocks."""
    out: list[tuple[str, int, int, int, int]] = []
    c_in, h, w = 3, height, width
    for b, (n_conv, c_out) in enumerate(_BLOCKS, start=1):
        for c in range(1, n_conv + 1):
            out.append((f"conv{b}_{c}", c_in, c_out, h, w))
            c_in = c_out
        h, w = h // 2, w // 2
    return out


def step_flops(
    width: int,
    height: int,
    content_layers: tuple[str, ...] = PAPER_LAYERS["content"],
    style_layers: tuple[str, ...] = PAPER_LAYERS["style"],
) -> dict[str, float]:
    """FLOPs of one loss + gradient evaluation on a ``width`` x ``height`` image, by part."""
    convs = _convs(width, height)
    names = [name for name, *_ in convs]
    deepest = max(names.index(layer) for layer in (*content_layers, *style_layers))
    conv_fwd = sum(2.0 * c_in * c_out * 9 * h * w for _, c_in, c_out, h, w in convs[: deepest + 1])
    gram_fwd = 0.0
    for layer in style_layers:
        _, _, c, h, w = convs[names.index(layer)]
        gram_fwd += 2.0 * c * c * h * w
    parts = {
        "conv_forward": conv_fwd,
        "conv_backward": conv_fwd,  # input gradients only: the weights are frozen
        "gram_forward": gram_fwd,
        "gram_backward": 2.0 * gram_fwd,
    }
    parts["total"] = sum(parts.values())
    return parts
