"""ganzoo's BatchNorm: nn.BatchNorm's values and statistics, closed-form double backward."""
import pytest
import torch
from torch import nn

from ganzoo.layers.batchnorm import BatchNorm1d, BatchNorm2d, _BatchNormTrain

CASES = [((3, 4, 5, 6), BatchNorm2d, nn.BatchNorm2d), ((1, 4, 5, 6), BatchNorm2d, nn.BatchNorm2d),
         ((7, 4), BatchNorm1d, nn.BatchNorm1d)]


def _pair(fast_cls, native_cls, affine, momentum=0.1):
    fast = fast_cls(4, affine=affine, momentum=momentum).double()
    if affine:
        with torch.no_grad():
            fast.weight.normal_()
            fast.bias.normal_()
    native = native_cls(4, affine=affine, momentum=momentum).double()
    native.load_state_dict(fast.state_dict())
    return fast, native


def _second_order(bn, x, weights):
    """Gradients of a scalar built from all first-order gradients (as a gradient penalty does)."""
    params = [x] + ([bn.weight, bn.bias] if bn.affine else [])
    first = torch.autograd.grad((bn(x) * weights[0]).sum(), params, create_graph=True)
    scalar = sum((g * w).sum() for g, w in zip(first, weights[1:])) + (first[0] ** 2).sum()
    second = torch.autograd.grad(scalar, params, allow_unused=True)
    return [g.detach() for g in first], [torch.zeros_like(p) if g is None else g for p, g in zip(params, second)]


@pytest.mark.parametrize("shape,fast_cls,native_cls", CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_matches_native_to_second_order(shape, fast_cls, native_cls, affine):
    torch.manual_seed(0)
    fast, native = _pair(fast_cls, native_cls, affine)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(shape, dtype=torch.float64)] * 2 + [torch.randn(4, dtype=torch.float64)] * 2
    (first_f, second_f), (first_n, second_n) = _second_order(fast, x, weights), _second_order(native, x, weights)
    assert torch.equal(fast(x), native(x))
    for a, b in zip(first_f + second_f, first_n + second_n):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fast.running_mean, native.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(fast.running_var, native.running_var, rtol=0, atol=0)
    assert int(fast.num_batches_tracked) == int(native.num_batches_tracked) == 2


def test_gradgradcheck():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, w, b: _BatchNormTrain.apply(x, w, b, None, None, 0.0, 1e-5),
                                        (x, weight, bias))


def test_eval_mode_and_cumulative_momentum():
    torch.manual_seed(0)
    fast, native = _pair(BatchNorm2d, nn.BatchNorm2d, True, momentum=None)
    for _ in range(3):
        x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
        assert torch.equal(fast(x), native(x))
    torch.testing.assert_close(fast.running_var, native.running_var, rtol=0, atol=0)
    fast.eval(), native.eval()
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    assert torch.equal(fast(x), native(x))


def test_bf16_input_second_order_close_to_fp32():
    """bf16 activations with fp32 parameters (what autocast feeds a norm): second-order gradients stay
    as close to fp32 as nn.BatchNorm2d's (no bf16 convolutions here: their oneDNN kernels are not deterministic)."""
    torch.manual_seed(0)
    x = torch.randn(1, 8, 12, 12)
    errors = []
    for norm in (BatchNorm2d, nn.BatchNorm2d):
        grads = []
        for dtype in (torch.float32, torch.bfloat16):
            torch.manual_seed(1)
            bn = norm(8)
            with torch.no_grad():
                bn.weight.normal_(1.0, 0.2)
            inp = x.to(dtype).requires_grad_(True)
            out = torch.nn.functional.leaky_relu(bn(inp), 0.2)
            grad, = torch.autograd.grad(out.float().pow(2).sum(), inp, create_graph=True)
            grad.float().pow(2).sum().backward()
            grads.append(bn.weight.grad.clone())
        assert torch.isfinite(grads[1]).all()
        errors.append(float((grads[1] - grads[0]).norm() / grads[0].norm()))
    assert errors[0] < 0.05 and errors[0] < 1.5 * errors[1] + 1e-3
