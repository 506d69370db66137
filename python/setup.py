"""pip install ./python — the deepercluster package (pure Python over the
shared library libdeepercluster, built by `make` and installed by `make
install`). Needs NumPy; PyTorch only for deepercluster.torch. Installs
offline with Debian's python3-setuptools: no build step, no download."""
from setuptools import setup

setup(
    name="deepercluster",
    version="0.1.0",
    description="DeeperCluster (unsupervised pre-training of convnet features) from Python, over libdeepercluster",
    packages=["deepercluster"],
    python_requires=">=3.9",
    install_requires=["numpy"],
    extras_require={"torch": ["torch"]},
)
