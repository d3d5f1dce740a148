"""StepContext: what a model's ``train_step`` uses to run forward passes and optimizer updates.

It hides precision (autocast, one GradScaler per optimizer for fp16) from the models.
"""
import contextlib
import warnings

import torch


class StepContext:
    def __init__(self, optimizers, device=torch.device("cpu"), precision="fp32", step=0, stage=0, stage_step=0,
                 grad_clip=None, accumulate=1):
        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be fp32, bf16 or fp16, got {precision!r}")
        self.optimizers = optimizers
        self.device = torch.device(device)
        self.precision = precision
        if precision == "bf16" and self.device.type == "cpu":
            warnings.warn("precision bf16 on the CPU: oneDNN's AMX bf16 convolution backward can return NaN "
                          "gradients at random (docs/training.md); fp32 is the safe CPU setting", stacklevel=2)
        self.step = step
        self.stage = stage
        self.stage_step = stage_step
        self.grad_clip = grad_clip
        self.accumulate = accumulate
        use_scaler = precision == "fp16"
        self.scalers = {name: torch.amp.GradScaler(self.device.type, enabled=use_scaler) for name in optimizers}

    def autocast(self):
        """Context for forward passes: autocast in bf16/fp16, nothing in fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def micro_batches(self, *tensors):
        """``train.accumulate`` parts of a batch: ``[(weight, (t1_part, t2_part, ...)), ...]``, each ``weight`` its
        share of the batch, so that sum(weight * mean loss of the part) is the mean loss of the batch."""
        total = len(tensors[0])
        parts = zip(*(t.tensor_split(self.accumulate) for t in tensors))
        return [(len(part[0]) / total, part) for part in parts if len(part[0])]

    def zero_grad(self, name):
        self.optimizers[name].zero_grad(set_to_none=True)

    def backward(self, loss, name, **kwargs):
        """Backward of ``loss`` for the parameters of optimizer ``name`` (scaled under fp16)."""
        self.scalers[name].scale(loss).backward(**kwargs)

    def optimizer_step(self, name):
        """Step optimizer ``name`` (unscaled and skipped on inf under fp16), then clear its grads.

        With ``grad_clip`` set, the global gradient norm of the optimizer's parameters is clipped first.
        """
        if self.grad_clip:
            self.scalers[name].unscale_(self.optimizers[name])
            params = [p for group in self.optimizers[name].param_groups for p in group["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scalers[name].step(self.optimizers[name])
        self.scalers[name].update()
        self.zero_grad(name)
