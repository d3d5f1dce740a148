"""Where each pretrained weights file ganzoo knows comes from: plain data, one entry per file.

Fields of an entry:

- ``name``: what ``ganzoo-fetch`` takes; ``file``: the name :func:`ganzoo.backbones.weights.resolve` is asked
  for (CSAIL segmentation files keep their ``<model_dir>/`` folder).
- ``url``: the official direct download, ``None`` when there is none (then ``sources`` or ``page``).
- ``hash_prefix``: the sha256 prefix the publisher puts after the last ``-`` of the file name (torch hub
  convention), ``None`` where there is none.
- ``verify``: how a file without a hash is checked before it enters the cache: the name of an architecture
  builder in :data:`ganzoo.backbones.fetch.ARCHITECTURES` (or ``"module:function"`` returning an
  ``nn.Module``) whose every tensor name and shape the file must match. ``None`` with no hash: only checked to
  load safely as a state dict of tensors.
- ``sources`` + ``convert``: files to download (role -> URL) and the converter (a name in
  :data:`ganzoo.backbones.fetch.CONVERTERS`) that turns them into ``file`` (the Caffe VGG16-Places365).
- ``page``: where to get a file that has no direct download (the user downloads it by hand).
- ``licence``: a note on the weights' terms.

The LPIPS linear calibration layers are not here: they ship inside the ``lpips`` package.
"""

_TV = "https://download.pytorch.org/models/"
_CSAIL_SEG = "http://sceneparsing.csail.mit.edu/model/pytorch/"
_PLACES = "http://places2.csail.mit.edu/models_places365/"
_PLACES_GITHUB = "https://raw.githubusercontent.com/CSAILVision/places365/master/"


def _entry(name, file, url, hash_prefix, licence, verify=None, sources=None, convert=None, page=None):
    return {"name": name, "file": file, "url": url, "hash_prefix": hash_prefix, "licence": licence,
            "verify": verify, "sources": sources, "convert": convert, "page": page}


def _torchvision(name, file, prefix):
    return _entry(name, file, _TV + file, prefix, "torchvision model zoo (BSD-3-Clause code; ImageNet-trained)")


def _csail_seg(name, folder, part, epoch, verify):
    file = f"{folder}/{part}_epoch_{epoch}.pth"
    return _entry(name, file, _CSAIL_SEG + file, None, "CSAIL semantic-segmentation-pytorch (BSD-3-Clause)",
                  verify=verify)


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
    _entry("vgg16_places365", "vgg16_places365.pth", None, None,
           "CSAIL Places365 (CC BY; see places2.csail.mit.edu); converted from Caffe by ganzoo",
           verify="vgg16_places365", convert="vgg16_places365",
           sources={"caffemodel": _PLACES + "vgg16_places365.caffemodel",
                    "prototxt": _PLACES_GITHUB + "deploy_vgg16_places365.prototxt",
                    "mean": _PLACES_GITHUB + "places365CNN_mean.binaryproto"}),
    _entry("resnet18_places365", "resnet18_places365.pth.tar", _PLACES + "resnet18_places365.pth.tar", None,
           "CSAIL Places365 (CC BY; see places2.csail.mit.edu)", verify="resnet18_places365"),
    _csail_seg("ade20k_ppm_encoder", "ade20k-resnet50dilated-ppm_deepsup", "encoder", 20, "csail_resnet50_dilated"),
    _csail_seg("ade20k_ppm_decoder", "ade20k-resnet50dilated-ppm_deepsup", "decoder", 20, "csail_ppm_deepsup"),
    _csail_seg("ade20k_upernet_encoder", "ade20k-resnet101-upernet", "encoder", 50, "csail_resnet101"),
    _csail_seg("ade20k_upernet_decoder", "ade20k-resnet101-upernet", "decoder", 50, "csail_upernet"),
    # the SPADE evaluation segmenters (issue 16); no published hashes
    _entry("deeplabv2_cocostuff", "deeplabv2_resnet101_msc-cocostuff164k-100000.pth",
           "https://github.com/kazuto1011/deeplab-pytorch/releases/download/v1.0/"
           "deeplabv2_resnet101_msc-cocostuff164k-100000.pth", None,
           "kazuto1011/deeplab-pytorch (MIT code; COCO-Stuff-trained)", verify="deeplabv2_cocostuff"),
    _entry("drn_d_105_cityscapes", "drn_d_105_cityscapes.pth", None, None,
           "fyu/drn (BSD-3-Clause code; Cityscapes-trained)",
           page="http://go.yf.io/drn-cityscapes-models (fyu/drn README: the released Cityscapes models)"),
]


def find(key):
    """The entry whose ``name`` or ``file`` is ``key``, or ``None``."""
    for entry in ENTRIES:
        if key in (entry["name"], entry["file"]):
            return entry
    return None


def urls(entry):
    """The URLs an entry is fetched from (one, the Caffe sources, or none)."""
    if entry["sources"]:
        return list(entry["sources"].values())
    return [entry["url"]] if entry["url"] else []
