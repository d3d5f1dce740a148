from setuptools import find_packages, setup

TOOLS = ["train", "eval", "fid", "sifid", "singan", "synthesize", "semantic_pyramid", "segment",
         "benchmark", "convert_vgg16_places365", "convert_spade", "sweep", "studio", "fetch", "prepare", "labels",
         "shards"]

setup(
    name="ganzoo",
    version="0.1.0",
    description="SinGAN, SPADE and Semantic Pyramid in one clean, tested PyTorch library",
    packages=find_packages(include=["ganzoo", "ganzoo.*"]),
    package_data={"ganzoo": ["assets/*"]},
    python_requires=">=3.10",
    install_requires=["torch>=2.1", "torchvision", "numpy", "scipy", "pillow", "pyyaml", "lpips",
                      "pytorch-fid", "tqdm"],
    extras_require={
        "test": ["pytest", "gradio>=5", "gradio_client", "submitit", "playwright", "webdataset"],
        "tensorboard": ["tensorboard"],
        "plots": ["matplotlib"],
        "caffe": ["protobuf"],
        "studio": ["gradio>=5", "gradio_client"],
        "slurm": ["submitit"],
        "shards": ["webdataset"],
    },
    entry_points={"console_scripts": [f"ganzoo-{t.replace('_', '-')}=ganzoo.cli.{t}:main" for t in TOOLS]},
)
