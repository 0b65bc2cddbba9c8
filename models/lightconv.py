"""Lightweight convolution over the encoder states (paper Section 2.2, Eq. 7).

OTSeq2Set turns the word-level encoder states ``{h_i}`` into coarser
"label-level" vectors ``{ĥ_j} = LightConv({h_i})`` (Eq. 7) with a stack of
lightweight convolutions (Wu et al., 2019, "Pay Less Attention with
Lightweight and Dynamic Convolutions", Eq. 2-3):

* depth-wise: every channel is convolved on its own (no mixing of channels);
* weight sharing: the ``C`` channels are split into ``H`` heads and all the
  channels of a head share one kernel (channel ``c`` uses head ``c % H``, the
  same grouping as fairseq's ``LightweightConv1d``);
* softmax-normalised: each head's kernel is ``softmax(W_h)`` over its ``K``
  taps, so the layer computes a convex combination of the window.

The paper stacks four layers with kernels 3, 7, 15, 30 and a ReLU between
them; every layer has stride 1 except the last (3, or 4 for Wiki10-31K).

Padding choices
---------------
Each layer pads ``(K - 1) // 2`` positions on the left and ``K // 2`` on the
right ("same" padding, fairseq's choice for even kernels): an odd kernel is
centred, the even kernel 30 looks 14 positions back and 15 ahead. With stride
``s`` the output has ``ceil(L / s)`` positions and output ``j`` is centred on
input ``j * s``; its padding mask is therefore ``mask[:, ::s]``, which for
right-padded sequences of length ``l`` marks exactly the first ``ceil(l / s)``
outputs as real. Padded positions are zeroed before every convolution, so
the padding of a batch never leaks into a real position, and the explicit
zero padding makes inputs of any length >= 1 valid, including inputs much
shorter than the receptive field (no need to pad documents to a minimum
length).

The authors' code differs (``style="authors"``, the default of the models'
configs): one kernel per channel (``H = C``), no padding ("valid": output
``j`` reads inputs ``j s .. j s + K - 1``, so the sequence shrinks by
``K - 1`` per layer, 51 positions over the four layers before the stride: a
document needs 52 tokens for one full window), and
a ReLU after the last layer too. Its real outputs are the windows that lie
inside the document; a document shorter than a kernel is zero-padded on the
right to one window, whose output counts as real (every row keeps at least one
position to attend to). ``style="heads"`` is the Wu et al. / fairseq layout
above (16 shared heads, "same" padding, no ReLU on the output).

``LightConv.forward`` is the fast path (one grouped ``F.conv1d`` per layer);
``LightConv.reference_forward`` is a slow, readable loop over output positions
kept beside it for the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LightConvLayer(nn.Module):
    """One lightweight convolution: depth-wise, head-shared, softmax kernels.

    .. math::

        \\mathrm{LightConv}(X, W, c)_{j} =
        \\sum_{k=1}^{K} \\mathrm{softmax}(W_{h(c)})_k \\,
        X_{j s + k - 1 - p_l,\\, c}

    Parameters
    ----------
    channels : int
        Number of channels ``C`` (divisible by ``heads``).
    kernel_size : int
        Kernel width ``K``.
    heads : int
        Number of kernels ``H`` shared across the channels.
    stride : int
        Step ``s`` between output positions.
    padding : str
        ``"same"`` (``(K - 1) // 2`` zeros left, ``K // 2`` right) or ``"valid"`` (none; see the module docstring).
    """

    def __init__(self, channels: int, kernel_size: int, heads: int, stride: int = 1, padding: str = "same"):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        self.channels, self.kernel_size, self.heads, self.stride = channels, kernel_size, heads, stride
        self.padding = padding
        if padding == "same":
            self.pad_left, self.pad_right = (kernel_size - 1) // 2, kernel_size // 2
        else:
            self.pad_left = self.pad_right = 0
        self.weight = nn.Parameter(torch.empty(heads, kernel_size))  # (H, K)
        nn.init.xavier_uniform_(self.weight)

    def kernel(self) -> torch.Tensor:
        """Per-channel normalised kernels, shape ``(C, K)``."""
        w = F.softmax(self.weight.float(), dim=-1)  # (H, K)
        return w.repeat(self.channels // self.heads, 1)  # (C, K): channel c -> head c % H

    def output_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Padding mask of the output, from the input's ``mask`` (B, S), True on real positions.

        ``"same"``: ``mask[:, ::stride]``, shape ``(B, ceil(S / s))``. ``"valid"``: the windows
        inside the document (at least the first), shape ``(B, (max(S, K) - K) // s + 1)``.
        """
        if self.padding == "same":
            return mask[:, :: self.stride]
        S, K, s = mask.shape[1], self.kernel_size, self.stride
        n_out = (max(S, K) - K) // s + 1
        n_real = torch.div(mask.sum(1) - K, s, rounding_mode="floor").add(1).clamp(min=1)  # (B,)
        return torch.arange(n_out, device=mask.device)[None, :] < n_real[:, None]  # (B, n_out)

    def _pad(self, S: int) -> tuple[int, int]:
        """Zeros (left, right) around ``S`` positions."""
        if self.padding == "same":
            return self.pad_left, self.pad_right
        return 0, max(0, self.kernel_size - S)  # "valid": one window at least

    def conv_channels_first(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` on channels-first ``x (B, C, S)``, zero on padded positions -> ``(B, C, S')``, mask.

        The stack (:class:`LightConv`) runs its layers in this layout: no transposes
        and no input masking between layers (each output is already zero on padding).
        """
        x = F.pad(x, self._pad(x.shape[-1]))  # (B, C, S + pads)
        w = self.kernel().to(x.dtype).unsqueeze(1)  # (C, 1, K)
        y = F.conv1d(x, w, stride=self.stride, groups=self.channels)  # (B, C, S')
        out_mask = self.output_mask(mask)  # (B, S')
        return y.masked_fill(~out_mask.unsqueeze(1), 0.0), out_mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fast path.

        Parameters
        ----------
        x : Tensor (B, S, C)
        mask : BoolTensor (B, S), True on real positions.

        Returns
        -------
        y : Tensor (B, S', C), zero on padded outputs; ``S' = ceil(S / s)`` with "same" padding.
        out_mask : BoolTensor (B, S')
        """
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0).transpose(1, 2)  # (B, C, S)
        y, out_mask = self.conv_channels_first(x, mask)  # (B, C, S')
        return y.transpose(1, 2), out_mask  # (B, S', C)

    def reference_forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slow readable reference: an explicit loop over output positions."""
        B, S, C = x.shape
        x = x * mask.unsqueeze(-1).to(x.dtype)
        left, right = self._pad(S)
        padded = torch.cat([x.new_zeros(B, left, C), x, x.new_zeros(B, right, C)], dim=1)  # (B, S + pads, C)
        w = self.kernel().to(x.dtype).t()  # (K, C)
        outputs = []
        for j in range(0, padded.shape[1] - self.kernel_size + 1, self.stride):
            window = padded[:, j : j + self.kernel_size, :]  # (B, K, C)
            outputs.append((window * w).sum(dim=1))  # (B, C)
        y = torch.stack(outputs, dim=1)  # (B, S', C)
        out_mask = self.output_mask(mask)
        return y * out_mask.unsqueeze(-1).to(y.dtype), out_mask


class LightConv(nn.Module):
    """A stack of :class:`LightConvLayer` with ReLU in between (Eq. 7).

    Parameters
    ----------
    channels : int
        Width ``C`` of the encoder states.
    kernel_sizes : sequence of int
        Kernels of the layers, paper: ``(3, 7, 15, 30)``.
    heads : int
        Shared kernels per layer.
    last_stride : int
        Stride of the last layer (paper: 3; 4 for Wiki10-31K); others use 1.
    dropout : float
        Dropout after each ReLU between layers (0 in the authors' code).
    style : str
        ``"authors"``: one kernel per channel (``heads`` ignored), "valid" padding,
        ReLU after every layer including the last. ``"heads"``: ``heads`` shared
        kernels, "same" padding, no ReLU on the output (see the module docstring).
        The component's default is ``"heads"``; the models' configs choose ``"authors"``
        (``BackboneConfig.lightconv_style``).
    """

    def __init__(self, channels: int, kernel_sizes=(3, 7, 15, 30), heads: int = 16,
                 last_stride: int = 3, dropout: float = 0.0, style: str = "heads"):
        super().__init__()
        if style not in ("authors", "heads"):
            raise ValueError(f"LightConv style must be 'authors' or 'heads', got {style!r}")
        n = len(kernel_sizes)
        heads, padding = (channels, "valid") if style == "authors" else (heads, "same")
        self.layers = nn.ModuleList(
            LightConvLayer(channels, k, heads, stride=last_stride if i == n - 1 else 1, padding=padding)
            for i, k in enumerate(kernel_sizes)
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.relu_last = style == "authors"

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, S, C)``, ``mask (B, S)`` -> ``ĥ (B, S', C)``, ``mask (B, S')``.

        Fast path: the layers run channels-first (one transpose in, one out; measured
        to remove most of the stack's copies on a CPU).
        """
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0).transpose(1, 2)  # (B, C, S)
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = self.dropout(F.relu(x))
            x, mask = layer.conv_channels_first(x, mask)  # (B, C, S'), zero on padding
        if self.relu_last:
            x = F.relu(x)  # padded outputs stay zero
        return x.transpose(1, 2), mask  # (B, S', C)

    def reference_forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as :meth:`forward` through the slow per-position loops of each layer."""
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = self.dropout(F.relu(x))
            x, mask = layer.reference_forward(x, mask)
        if self.relu_last:
            x = F.relu(x)
        return x, mask
