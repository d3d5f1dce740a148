"""Label encodings on the device: one-hot maps, instance edges, the compact form, and the convolution
of a one-hot map computed as table lookups (:class:`OneHotConv2d`).
"""
import torch
import torch.nn.functional as F
from torch import nn


class _OneHotConvFunction(torch.autograd.Function):
    """Sum of table rows picked by ``cols`` (B, taps); the backward scatters into the table tap by tap,
    which is several times faster on CPU than embedding_bag's generic backward."""

    @staticmethod
    def forward(ctx, cols, table):
        ctx.save_for_backward(cols)
        ctx.table_shape = table.shape
        return F.embedding_bag(cols, table, mode="sum")

    @staticmethod
    def backward(ctx, grad):
        cols, = ctx.saved_tensors
        grad = grad.contiguous()
        grad_table = grad.new_zeros(ctx.table_shape)
        for tap in range(cols.shape[1]):
            grad_table.index_add_(0, cols[:, tap], grad)
        return None, grad_table


class OneHotConv2d(nn.Conv2d):
    """A Conv2d (same parameters and state-dict keys) that also accepts its input in compact form.

    Dense input (``in_channels`` channels) runs the ordinary convolution. Compact input has
    ``1 + in_channels - num_classes`` channels: channel 0 holds the class index (as float) of a one-hot
    map over the first ``num_classes`` channels, the rest are the remaining dense channels (e.g. the
    instance-edge map). A conv of a one-hot map is a sum of weight columns picked by the label under each
    kernel tap, so the compact form costs kernel-area lookups per pixel instead of
    ``num_classes x kernel-area`` multiply-adds: SPADE's label convs (151 -> 128 channels at every
    resolution) are a large share of the generator's work. Same result up to float summation order.
    """

    def __init__(self, in_channels, out_channels, kernel_size, num_classes, padding=None, bias=True):
        padding = kernel_size // 2 if padding is None else padding
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, bias=bias)
        if num_classes > in_channels or kernel_size % 2 == 0 or padding != kernel_size // 2:
            raise ValueError("OneHotConv2d needs num_classes <= in_channels and an odd kernel with 'same' padding")
        self.num_classes = num_classes

    def forward(self, x):
        if x.shape[1] == self.in_channels:
            return super().forward(x)
        k, classes, pad = self.kernel_size[0], self.num_classes, self.padding[0]
        n, _, h, w = x.shape
        index = x[:, 0].long()
        # row ``classes`` of every tap's table is zero: the label value of the zero padding
        padded = F.pad(index, (pad, pad, pad, pad), value=classes)
        cols = torch.stack([padded[:, dy:dy + h, dx:dx + w] + (dy * k + dx) * (classes + 1)
                            for dy in range(k) for dx in range(k)], dim=-1).reshape(-1, k * k)
        weight = self.weight[:, :classes].permute(2, 3, 1, 0).reshape(k * k, classes, self.out_channels)
        table = F.pad(weight, (0, 0, 0, 1)).reshape(k * k * (classes + 1), self.out_channels)
        out = _OneHotConvFunction.apply(cols, table).view(n, h, w, self.out_channels).permute(0, 3, 1, 2)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        if self.in_channels > classes:
            out = out + F.conv2d(x[:, 1:].to(out.dtype), self.weight[:, classes:].to(out.dtype), None, 1, pad)
        return out


def compact_labels(label, extra=None):
    """Compact condition for :class:`OneHotConv2d`: class index as float (N,1,H,W) + extra dense channels."""
    compact = label.to(torch.float32)  # float32 keeps class indices exact (bf16 would not past 256)
    if compact.dim() == 3:
        compact = compact.unsqueeze(1)
    return compact if extra is None else torch.cat([compact, extra.to(torch.float32)], 1)


def one_hot(label, num_classes, dtype=torch.float32):
    """(N,1,H,W) long -> (N,num_classes,H,W) one-hot on the label's device."""
    if label.dim() == 3:
        label = label.unsqueeze(1)
    out = torch.zeros(label.shape[0], num_classes, *label.shape[2:], device=label.device, dtype=dtype)
    return out.scatter_(1, label.long(), 1.0)


def instance_edges(instance, dtype=torch.float32):
    """1 where a pixel's 4-neighbour has another instance id (both sides marked), else 0; (N,1,H,W)."""
    if instance.dim() == 3:
        instance = instance.unsqueeze(1)
    edge = torch.zeros(instance.shape, dtype=torch.bool, device=instance.device)
    dx = instance[..., :, 1:] != instance[..., :, :-1]
    dy = instance[..., 1:, :] != instance[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.to(dtype)
