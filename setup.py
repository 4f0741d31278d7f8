"""Package discovery for the one import package `mtdepth` (the rest of the metadata is in pyproject.toml).

The repository keeps `pipeline/`, `cache/` and `stages/` at its root; they install as
`mtdepth.pipeline`, `mtdepth.cache`, `mtdepth.stages`, every subpackage found by setuptools
(so a new folder such as `pipeline/models/` ships without editing a list). The shipped default
models in `weights/` install as package data of `mtdepth.weights`.
"""

from setuptools import find_packages, setup

ROOTS = {
    "mtdepth": "mtdepth",
    "mtdepth.pipeline": "pipeline",
    "mtdepth.cache": "cache",
    "mtdepth.stages": "stages",
    "mtdepth.weights": "weights",
}

packages = []
for name, folder in ROOTS.items():
    packages += [name, *(f"{name}.{sub}" for sub in find_packages(folder))]

setup(
    packages=packages,
    package_dir=ROOTS,
    package_data={"mtdepth.weights": ["*.pt", "*.onnx", "*.json"]},
    include_package_data=False,
)
