"""Where each pretrained weights file ganzoo knows comes from: plain data, one entry per file.

``file`` is the name :func:`ganzoo.backbones.weights.resolve` is asked for (CSAIL segmentation files keep
their ``<model_dir>/`` folder); ``hash_prefix`` is the sha256 prefix the publisher puts after the last ``-``
of the file name (torch hub convention), ``None`` where there is none.
"""

_TV = "https://download.pytorch.org/models/"
_CSAIL_SEG = "http://sceneparsing.csail.mit.edu/model/pytorch/"


def _entry(name, file, url, hash_prefix, licence):
    return {"name": name, "file": file, "url": url, "hash_prefix": hash_prefix, "licence": licence}


def _torchvision(name, file, prefix):
    return _entry(name, file, _TV + file, prefix, "torchvision model zoo (BSD-3-Clause code; ImageNet-trained)")


def _csail_seg(name, folder, part, epoch):
    file = f"{folder}/{part}_epoch_{epoch}.pth"
    return _entry(name, file, _CSAIL_SEG + file, None, "CSAIL semantic-segmentation-pytorch (BSD-3-Clause)")


ENTRIES = [
    _entry("fid_inception", "pt_inception-2015-12-05-6726825d.pth",
           "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
           "pt_inception-2015-12-05-6726825d.pth", "6726825d",
           "pytorch-fid port of the TF FID Inception (Apache-2.0)"),
    _torchvision("inception_v3", "inception_v3_google-0cc3c7bd.pth", "0cc3c7bd"),
    _torchvision("vgg19", "vgg19-dcbb9e9d.pth", "dcbb9e9d"),
    _torchvision("vgg16", "vgg16-397923af.pth", "397923af"),
    _torchvision("alexnet", "alexnet-owt-7be5be79.pth", "7be5be79"),
    _torchvision("squeezenet1_1", "squeezenet1_1-b8a52dc0.pth", "b8a52dc0"),
    _entry("resnet18_places365", "resnet18_places365.pth.tar",
           "http://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar", None,
           "CSAIL Places365 (CC BY; see places2.csail.mit.edu)"),
    _csail_seg("ade20k_ppm_encoder", "ade20k-resnet50dilated-ppm_deepsup", "encoder", 20),
    _csail_seg("ade20k_ppm_decoder", "ade20k-resnet50dilated-ppm_deepsup", "decoder", 20),
    _csail_seg("ade20k_upernet_encoder", "ade20k-resnet101-upernet", "encoder", 50),
    _csail_seg("ade20k_upernet_decoder", "ade20k-resnet101-upernet", "decoder", 50),
]


def find(key):
    """The entry whose ``name`` or ``file`` is ``key``, or ``None``."""
    for entry in ENTRIES:
        if key in (entry["name"], entry["file"]):
            return entry
    return None
