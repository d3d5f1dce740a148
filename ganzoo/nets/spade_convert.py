"""NVlabs/SPADE checkpoints <-> ganzoo SPADE networks.

The official files (``checkpoints/<name>/<epoch>_net_G.pth``, ``_net_D.pth``, ``_net_E.pth``) are plain
state dicts saved with the old ``torch.nn.utils.spectral_norm`` (``weight_orig``, ``weight_u``,
``weight_v``) and the official module names (``conv_0``, ``norm_0.mlp_shared`` ...). ganzoo uses the
key layout of ``torch.nn.utils.parametrizations.spectral_norm`` (:mod:`ganzoo.layers.spectral_norm`)
and the shared ResBlock / SPADE names. The spectral norm state (u, v) is carried over, so eval- and
training-mode outputs are the same as the official network's.

Options are read from ``opt.txt`` beside the checkpoint when present, else inferred from tensor shapes
(with the released models' settings for 151 / 184 / 36 label channels).
"""
import os
import re

import torch

# (official, ganzoo) fragments; applied left to right on dotted names
_SN = [(".weight_orig", ".parametrizations.weight.original"),
       (".weight_u", ".parametrizations.weight.0._u"),
       (".weight_v", ".parametrizations.weight.0._v")]
_GENERATOR = [(".conv_0.", ".block_0.conv."), (".conv_1.", ".block_1.conv."),
              (".norm_0.", ".block_0.norm."), (".norm_1.", ".block_1.norm."),
              (".mlp_shared.", ".shared."), (".mlp_gamma.", ".gamma."), (".mlp_beta.", ".beta.")]

# the released generators (NVlabs/SPADE README), keyed by the fc input channels of the non-VAE G
RELEASED = {
    151: {"name": "ade20k", "label_nc": 150, "contain_dontcare_label": True, "use_instance": False,
          "num_upsampling_layers": "normal", "crop_size": 256, "aspect_ratio": 1.0},
    184: {"name": "coco", "label_nc": 182, "contain_dontcare_label": True, "use_instance": True,
          "num_upsampling_layers": "normal", "crop_size": 256, "aspect_ratio": 1.0},
    36: {"name": "cityscapes", "label_nc": 35, "contain_dontcare_label": False, "use_instance": True,
         "num_upsampling_layers": "more", "crop_size": 512, "aspect_ratio": 2.0},
}


def _rename(key, pairs):
    key = "." + key
    for old, new in pairs:
        key = key.replace(old, new)
    return key[1:]


def _unrename(key, pairs):
    key = "." + key
    for old, new in reversed(pairs):
        key = key.replace(new, old)
    return key[1:]


def _candidates(key):
    """ganzoo names an official key may have (the D/E conv-in-Sequential nesting differs)."""
    base = _rename(key, _GENERATOR + _SN)
    out = [base]
    # D middle layers / E layers: Sequential(Sequential(conv, norm), act) or Sequential(conv, norm) -> ConvBlock.conv
    out.append(re.sub(r"^(.*\bmodel\d+)\.0\.0\.", r"\1.conv.", base))
    out.append(re.sub(r"^(.*\blayer\d+)\.0\.", r"\1.conv.", base))
    # D last layer: Sequential(conv) -> conv
    out.append(re.sub(r"^(.*\bmodel\d+)\.0\.", r"\1.", base))
    return out


def from_reference(state_dict, target_keys):
    """Rename an official state dict to ganzoo names, using the keys of the target module to resolve
    the D/E nesting; a key without a target is an error listing it."""
    targets = set(target_keys)
    out, unknown = {}, []
    for key, value in state_dict.items():
        for candidate in _candidates(key):
            if candidate in targets:
                out[candidate] = value
                break
        else:
            unknown.append(key)
    return out, unknown


def to_reference(state_dict):
    """ganzoo names -> official names (inverse of :func:`from_reference`)."""
    out = {}
    for key, value in state_dict.items():
        name = _unrename(key, _GENERATOR + _SN)
        name = re.sub(r"^(.*\bmodel0)\.(weight|bias)$", r"\1.0.\2", name)
        if re.match(r"^(.*\bmodel\d+)\.conv\.", name):
            name = re.sub(r"^(.*\bmodel\d+)\.conv\.", r"\1.0.0.", name)
        elif re.match(r"^(.*\blayer\d+)\.conv\.", name):
            name = re.sub(r"^(.*\blayer\d+)\.conv\.", r"\1.0.", name)
        elif re.match(r"^(.*\bmodel[1-9]\d*)\.(weight|bias)$", name):
            name = re.sub(r"^(.*\bmodel\d+)\.(weight|bias)$", r"\1.0.\2", name)
        out[name] = value
    return out


def is_reference_state(state_dict):
    return any(key.endswith(("weight_orig", "mlp_shared.0.weight")) or ".model0.0." in key for key in state_dict)


def read_state(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and torch.is_tensor(next(iter(state["state_dict"].values()), None)):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path} is not a plain state dict of tensors (expected an NVlabs *_net_G/D/E.pth)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def load_into(module, path, strict=True):
    """Load an official (or ganzoo-layout) state dict file into ``module``; one-line error on mismatch."""
    state = read_state(path)
    target = module.state_dict()
    if is_reference_state(state):
        state, unknown = from_reference(state, target.keys())
        if unknown:
            raise ValueError(f"{path}: {len(unknown)} key(s) do not fit {type(module).__name__}: "
                             f"{', '.join(unknown[:5])}")
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}" for k in target
             if k in state and state[k].shape != target[k].shape]
    if strict and (missing or wrong):
        detail = f"missing {', '.join(missing[:5])}" if missing else f"shape mismatch {', '.join(wrong[:3])}"
        raise ValueError(f"{path} does not match this {type(module).__name__} ({detail}); "
                         "check label_nc / contain_dontcare_label / use_instance / ngf / num_upsampling_layers")
    module.load_state_dict(state, strict=False)
    return module


# ------------------------------------------------------------------------------------------- options

def read_opt_txt(path):
    """``key: value`` pairs of the official ``opt.txt`` (values parsed as bool/int/float/str)."""
    options = {}
    with open(path) as f:
        for line in f:
            match = re.match(r"^\s*(\w+):\s*(\S+)", line)
            if not match:
                continue
            key, text = match.groups()
            if text in ("True", "False"):
                value = text == "True"
            else:
                try:
                    value = int(text)
                except ValueError:
                    try:
                        value = float(text)
                    except ValueError:
                        value = text
            options[key] = value
    return options


def options_from_checkpoint(path):
    """Model config (the ``spade`` model keys) for an official generator file.

    Reads ``opt.txt`` in the same directory if present; otherwise infers ngf, VAE and the upsampling
    count from the tensors and the dataset options from the released models' channel counts.
    """
    state = read_state(path)
    if "fc.weight" not in state:
        raise ValueError(f"{path} has no fc.weight: not a SPADE generator checkpoint")
    fc = state["fc.weight"]
    vae = fc.dim() == 2
    ngf = state["head_0.conv_0.weight_orig" if "head_0.conv_0.weight_orig" in state
                else "head_0.block_0.conv.parametrizations.weight.original"].shape[0] // 16
    semantic_nc = state["head_0.norm_0.mlp_shared.0.weight" if "head_0.norm_0.mlp_shared.0.weight" in state
                        else "head_0.block_0.norm.shared.0.weight"].shape[1]
    has_running = any(k.endswith("param_free_norm.running_mean") for k in state)
    shared = state["head_0.norm_0.mlp_shared.0.weight" if "head_0.norm_0.mlp_shared.0.weight" in state
                   else "head_0.block_0.norm.shared.0.weight"]
    hidden, kernel = shared.shape[0], shared.shape[-1]
    opt = RELEASED.get(semantic_nc, {}).copy()
    opt.pop("name", None)
    opt.setdefault("num_upsampling_layers", "most" if any(k.startswith("up_4.") for k in state) else "normal")
    opt_txt = os.path.join(os.path.dirname(os.path.abspath(path)), "opt.txt")
    if os.path.isfile(opt_txt):
        ref = read_opt_txt(opt_txt)
        opt.update({key: ref[key] for key in ("label_nc", "contain_dontcare_label", "num_upsampling_layers",
                                              "crop_size", "aspect_ratio") if key in ref})
        if "no_instance" in ref:
            opt["use_instance"] = not ref["no_instance"]
    if "label_nc" not in opt:
        raise ValueError(f"{path}: cannot tell label_nc / contain_dontcare_label / use_instance for "
                         f"{semantic_nc} input channels: put the run's opt.txt beside it or pass them")
    if opt["label_nc"] + int(opt["contain_dontcare_label"]) + int(opt["use_instance"]) != semantic_nc:
        raise ValueError(f"{path}: options give {opt['label_nc']}+dontcare+instance channels but the weights "
                         f"expect {semantic_nc}")
    cfg = {key: opt[key] for key in ("label_nc", "contain_dontcare_label", "use_instance")}
    cfg["crop_size"] = opt.get("crop_size", 256)
    cfg["aspect_ratio"] = opt.get("aspect_ratio", 1.0)
    cfg["generator"] = {"type": "spade_generator", "ngf": ngf, "num_upsampling_layers": opt["num_upsampling_layers"],
                        "norm": {"type": "spade", "param_free": "sync_batch" if has_running else "instance",
                                 "hidden": hidden, "kernel": kernel},
                        "spectral_norm": "head_0.conv_0.weight_orig" in state
                        or "head_0.block_0.conv.parametrizations.weight.original" in state}
    if vae:
        cfg["encoder"] = {"type": "spade_vae_encoder", "z_dim": fc.shape[1], "ndf": ngf}
    return cfg


def discriminator_options(path):
    """``model.discriminator`` config for an official (or ganzoo) multiscale discriminator file."""
    state = read_state(path)
    first = [k for k in state if re.match(r"^discriminator_0\.model0\.0?\.?weight$", k)]
    if not first:
        raise ValueError(f"{path} has no discriminator_0.model0 weights: not a SPADE discriminator checkpoint")
    num_d = len({k.split(".")[0] for k in state if k.startswith("discriminator_")})
    n_layers = len({k.split(".")[1] for k in state if k.startswith("discriminator_0.")}) - 1
    return {"type": "multiscale_patchgan", "num_d": num_d, "n_layers": n_layers, "ndf": state[first[0]].shape[0],
            "norm": "instance", "spectral_norm": any("weight_orig" in k or "parametrizations" in k for k in state)}


# ------------------------------------------------------------------------------------------- building

def build_from_reference(path, discriminator=None, encoder=None, overrides=()):
    """``(model, model_cfg)``: a ganzoo ``spade`` model holding the official generator file ``path`` (options
    from :func:`options_from_checkpoint`), the official ``discriminator`` file if given, and for a VAE generator
    its encoder (``encoder``, default: ``*_net_E.pth`` beside ``path``). ``overrides`` are dotted model keys
    (``num_upsampling_layers=more``) applied to the options before the model is built."""
    from ganzoo.config import apply_overrides
    from ganzoo.registry import MODELS

    model_cfg = {"type": "spade", **options_from_checkpoint(path)}
    if discriminator:
        model_cfg["discriminator"] = discriminator_options(discriminator)
    model_cfg = apply_overrides(model_cfg, overrides)
    model = MODELS.build(model_cfg)
    load_into(model.G, path)
    if discriminator:
        load_into(model.D, discriminator)
    if model.E is not None:
        folder, name = os.path.split(path)
        encoder = encoder or os.path.join(folder, name.replace("_net_G", "_net_E"))
        if not os.path.isfile(encoder):
            raise FileNotFoundError(f"{path} is a VAE generator: its encoder {encoder} is needed too")
        load_into(model.E, encoder)
    elif encoder:
        raise ValueError(f"an encoder was given but {path} is not a VAE generator (its fc is a conv)")
    return model, model_cfg
