"""Every registered part is exercised: built small, run forward and backward, outputs finite, and every
trainable parameter receives a gradient.

A new registry entry without an example below fails ``test_every_part_has_an_example``: add one (or,
for parts that need more than tensors, name the test that covers it in ``COVERED_BY``).
"""
import importlib

import pytest
import torch

from ganzoo.registry import ALL, MODELS, NORMS


def _img(n=2, c=3, size=32):
    return torch.rand(n, c, size, size) * 2 - 1


def _seg(n=2, classes=4, size=32):
    return torch.nn.functional.one_hot(torch.randint(0, classes, (n, size, size)), classes).permute(0, 3, 1, 2).float()


SP_LEVELS = [["conv", 8, 4], ["fc", 16, None]]


def _sp_generator_inputs():
    return (torch.randn(2, 8), [torch.randn(2, 8, 8, 8), torch.randn(2, 16)],
            [torch.ones(2, 1, 8, 8), torch.ones(2)])


# (registry name, entry) -> (build kwargs, function making the forward inputs)
NETWORKS = {
    ("generator", "singan_generator"): ({"nfc": 8, "min_nfc": 8}, lambda: (torch.randn(1, 3, 26, 26), torch.randn(1, 3, 16, 16))),
    ("generator", "spade_generator"): ({"label_nc": 4, "ngf": 2, "crop_size": 64}, lambda: (_seg(classes=4, size=64),)),
    ("generator", "semantic_pyramid"): ({"levels": SP_LEVELS, "image_size": 32, "z_dim": 8, "channels": [16, 8],
                                        "stem_channels": 16, "attention": [1]}, _sp_generator_inputs),
    ("discriminator", "singan_discriminator"): ({"nfc": 8, "min_nfc": 8}, lambda: (_img(1, size=16),)),
    ("generator", "consingan_generator"): ({"nfc": 8, "norm": "batch"},
                                           lambda: ([torch.randn(2, 3, 10, 14)], [(10, 14)], [1.0])),
    ("discriminator", "consingan_discriminator"): ({"nfc": 8}, lambda: (_img(1, size=16),)),
    ("discriminator", "patchgan"): ({"input_nc": 3, "ndf": 4}, lambda: (_img(),)),
    ("discriminator", "multiscale_patchgan"): ({"input_nc": 3, "ndf": 4}, lambda: (_img(),)),
    ("discriminator", "sagan_projection"): ({"image_size": 32, "channels": [8, 16, 16], "num_classes": 5},
                                            lambda: (_img(), torch.tensor([1, 4]))),
    ("discriminator", "dcgan_critic"): ({"image_size": 32, "channels": [8, 16, 16]}, lambda: (_img(),)),
    ("encoder", "spade_vae_encoder"): ({"z_dim": 5, "ndf": 4, "input_size": 32}, lambda: (_img(),)),
    ("backbone", "fid_inception"): ({"dims": 64, "weights": "random"}, lambda: ((_img(size=75) + 1) / 2,)),
    ("backbone", "sifid_inception"): ({"weights": "random"}, lambda: ((_img(size=64) + 1) / 2,)),
    ("backbone", "resnet18_places365"): ({"weights": "random"}, lambda: (_img(size=64),)),
    ("backbone", "vgg16_places365"): ({"weights": "random"}, lambda: (_img(size=64),)),
    ("backbone", "ade20k_resnet50dilated_ppm"): ({"weights": "random"}, lambda: (_img(1, size=64),)),
    ("backbone", "ade20k_resnet101_upernet"): ({"weights": "random"}, lambda: (_img(1, size=64),)),
}
# Parts whose forward needs more than tensors: (registry name, entry) -> "module::test" that covers it.
COVERED_BY = {
    **{("loss", name): "test_layers_losses::test_gan_losses_against_hand_values"
       for name in ("hinge", "wgan", "lsgan", "non_saturating")},
    **{("loss", name): "test_layers_losses::test_image_losses"
       for name in ("feature_matching", "kld", "reconstruction", "mode_seeking")},
    ("loss", "vgg"): "test_layers_losses::test_vgg_loss_weights_resolution",
    **{("norm", name): "test_layers_losses::test_every_norm_builds_and_backprops" for name in NORMS.names()},
    **{("model", name): "test_switches::test_switch_matrix" for name in MODELS.names()},
    ("dataset", "single_image"): "test_singan::test_single_image_modes",
    ("dataset", "ade20k"): "test_spade_data::test_ade20k_raw_labels_151_channels_and_geometry",
    ("loss", "segmentation_gan"): "test_oasis::test_n_plus_one_targets_and_labelmix",
    ("generator", "oasis_generator"): "test_oasis::test_oasis_nets_official_param_counts_and_shapes",
    ("discriminator", "oasis_unet"): "test_oasis::test_oasis_nets_official_param_counts_and_shapes",
    ("dataset", "paired_folders"): "test_spade_data::test_paired_folders_with_instances_and_rgb_label_error",
    ("dataset", "places365"): "test_places365::test_official_layout",
    ("dataset", "coco_stuff"): "test_coco_cityscapes_data::test_coco_stuff_pairs_dontcare_instances_and_val_sizes",
    ("dataset", "cityscapes"): "test_coco_cityscapes_data::test_cityscapes_pairs_by_frame_labels_instances_512x256",
    ("dataset", "image_folder"): "test_places365::test_image_folder",
    ("dataset", "webdataset"): "test_shards::test_paired_round_trip_index_and_shard_count",
    ("metric", "fid"): "test_metrics::test_fid_metric_is_zero_for_a_model_that_returns_the_data",
    ("metric", "sifid"): "test_metrics::test_sifid_metric",
    ("metric", "swd"): "test_metrics::test_swd_metric_resizes_reals_to_the_sample_size",
    ("metric", "diversity"): "test_metrics::test_singan_diversity_by_hand",
    ("metric", "lpips_diversity"): "test_metrics::test_lpips_diversity_metric",
    ("metric", "segmentation"): "test_segmentation::test_spade_evaluation_metric_protocol_and_scores",
    ("backbone", "drn_d_105_cityscapes"): "test_segmenters::test_drn_official_key_names_load_strictly",
    ("backbone", "deeplabv2_cocostuff"): "test_segmenters::test_deeplab_parameter_count_and_key_names",
}

ENTRIES = [(registry.name, name) for registry in ALL for name in registry.names()]
REGISTRIES = {registry.name: registry for registry in ALL}


@pytest.mark.parametrize("key", ENTRIES, ids=lambda key: "/".join(key))
def test_every_part_has_an_example(key):
    if key in NETWORKS:
        return
    assert key in COVERED_BY, f"registered {key[0]} {key[1]!r} has no example in tests/test_all_parts.py"
    module, test = COVERED_BY[key].split("::")
    assert callable(getattr(importlib.import_module(f"tests.{module}"), test, None)), \
        f"{COVERED_BY[key]} (named as covering {key[0]} {key[1]!r}) does not exist"


def _flatten(out):
    if torch.is_tensor(out):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for item in out for t in _flatten(item)]


@pytest.mark.parametrize("key", sorted(NETWORKS), ids=lambda key: "/".join(key))
def test_network_forward_backward_finite(key):
    torch.manual_seed(0)
    kwargs, make_inputs = NETWORKS[key]
    net = REGISTRIES[key[0]].build({"type": key[1], **kwargs})
    inputs = make_inputs()
    float_inputs = [x.requires_grad_(True) for x in inputs if torch.is_tensor(x) and x.is_floating_point()]
    outputs = _flatten(net(*inputs))
    assert outputs and all(torch.isfinite(o).all() for o in outputs)
    sum(o.float().mean() for o in outputs).backward()
    trainable = [name for name, p in net.named_parameters() if p.requires_grad]
    if trainable:  # timm's rule: num_params == num_grad
        without = [name for name, p in net.named_parameters() if p.requires_grad and p.grad is None]
        assert not without, f"{len(without)} of {len(trainable)} trainable parameters get no gradient: {without[:5]}"
    else:  # frozen backbones still pass gradients to their input (used as losses)
        assert float_inputs[0].grad is not None and torch.isfinite(float_inputs[0].grad).all()


def test_examples_refer_to_registered_parts():
    stale = [key for key in list(NETWORKS) + list(COVERED_BY) if key not in ENTRIES]
    assert not stale, f"examples for parts that are no longer registered: {stale}"
