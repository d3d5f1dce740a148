"""Official OASIS checkpoints (boschresearch/OASIS ``checkpoints/<name>/models/<iter>_G.pth``, ``_EMA.pth``,
``_D.pth``) <-> ganzoo's ``oasis_generator`` / ``oasis_unet``.

The key mapping (official -> ganzoo):

- spectral norm: ``weight_orig`` / ``weight_u`` / ``weight_v`` (old ``torch.nn.utils.spectral_norm``) ->
  ``parametrizations.weight.original`` / ``.0._u`` / ``.0._v``; u and v carried over, so outputs match;
- generator: ``body.i.conv_0`` / ``conv_1`` -> ``body.i.block_0.conv`` / ``block_1.conv``; ``norm_0`` /
  ``norm_1`` -> ``block_0.norm`` / ``block_1.norm``; in a SPADE norm ``first_norm`` -> ``param_free_norm``,
  ``mlp_shared`` / ``mlp_gamma`` / ``mlp_beta`` -> ``shared`` / ``gamma`` / ``beta``; ``fc``, ``conv_s``,
  ``norm_s``, ``conv_img`` keep their names;
- discriminator: ``body_down.i`` -> ``down.i``, ``body_up.i`` -> ``up.i``, the convs inside the official
  ``Sequential`` (``conv1.0`` / ``conv1.1`` / ``conv1.2``, ``conv2.1``) -> ``conv1`` / ``conv2``;
  ``layer_up_last`` -> ``out`` with its output rows reordered: the official puts "fake" first (channel 0,
  class k at k + 1), ganzoo's N+1 loss puts class k at k and "fake" last.
"""
import re

import torch

_SN = [(".weight_orig", ".parametrizations.weight.original"),
       (".weight_u", ".parametrizations.weight.0._u"),
       (".weight_v", ".parametrizations.weight.0._v")]
_GENERATOR = [(".conv_0.", ".block_0.conv."), (".conv_1.", ".block_1.conv."),
              (".norm_0.", ".block_0.norm."), (".norm_1.", ".block_1.norm."), (".first_norm.", ".param_free_norm."),
              (".mlp_shared.", ".shared."), (".mlp_gamma.", ".gamma."), (".mlp_beta.", ".beta.")]


def _rename(key, pairs):
    key = "." + key
    for old, new in pairs:
        key = key.replace(old, new)
    return key[1:]


def is_reference_generator(state):
    return any(k.startswith("body.0.conv_0.") for k in state)


def is_reference_discriminator(state):
    return any(k.startswith("body_down.0.") for k in state)


def generator_from_reference(state):
    """Official OASIS_Generator state dict -> ``oasis_generator`` state dict."""
    return {_rename(k, _GENERATOR + _SN): v for k, v in state.items()}


def fake_last(tensor):
    """Rows (fake, class 0, ..., class N-1) -> (class 0, ..., class N-1, fake)."""
    return torch.cat([tensor[1:], tensor[:1]], 0)


def discriminator_from_reference(state):
    """Official OASIS_Discriminator state dict -> ``oasis_unet`` state dict (output rows reordered)."""
    out = {}
    for key, value in state.items():
        if key.startswith("layer_up_last."):
            out["out." + key.split(".", 1)[1]] = fake_last(value)
            continue
        key = re.sub(r"^body_down\.", "down.", key)
        key = re.sub(r"^body_up\.", "up.", key)
        key = re.sub(r"\.conv1\.\d\.", ".conv1.", key)
        key = re.sub(r"\.conv2\.\d\.", ".conv2.", key)
        out[_rename(key, _SN)] = value
    return out


def load_into(net, path):
    """Load an official OASIS file (generator, EMA generator or discriminator) or a ganzoo state dict of the
    same network into ``net``; a mismatch is a one-line error naming the file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if is_reference_generator(state):
        state = generator_from_reference(state)
    elif is_reference_discriminator(state):
        state = discriminator_from_reference(state)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise ValueError(f"{path} does not fit {type(net).__name__} built from the config: {first}") from None
    return net
