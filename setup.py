"""Installs the fadenn_tf package and one console command per job."""
import ast
from pathlib import Path

from setuptools import find_packages, setup


def read_version():
    """__version__ of fadenn_tf/version.py, read as text (the package is not imported)."""
    text = (Path(__file__).parent / "fadenn_tf" / "version.py").read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__"
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError("fadenn_tf/version.py defines no __version__")


JOBS = ["train", "evaluate", "predict", "track", "export", "bench", "synth", "degrade",
        "train_failure_detector"]

setup(
    name="fadenn_tf",
    version=read_version(),
    description="FADeNN: face alignment (68 landmarks) with an internal de-noiser network, "
                "TensorFlow/Keras reference implementation",
    project_urls={"Paper authors' code": "https://github.com/deckyal/FADeNN"},
    author="fadenn_tf maintainers",
    license="Apache-2.0",
    license_files=["LICENSE", "NOTICE"],
    python_requires=">=3.10",
    packages=find_packages(include=["fadenn_tf", "fadenn_tf.*"]),
    package_data={"fadenn_tf.configs": ["*.yaml"],
                  "fadenn_tf.pretrained": ["*/model.keras", "*/model.json",
                                           "*/failure_detector.npz", "*/litert-int8/*"],
                  # UltraFace face detector files and their MIT licence
                  "fadenn_tf.detect": ["models/*.tflite", "models/LICENSE-ultraface.txt",
                                       "models/README.md"]},
    install_requires=[
        "tensorflow-cpu==2.21.*; platform_machine=='x86_64' or platform_machine=='AMD64'",
        "keras>=3.10,<4",
        "numpy>=1.26",
        "opencv-python-headless>=4.10,<5",
        "PyYAML>=6.0",
        "ai-edge-litert>=2.0",
        "tqdm>=4.60",
        "tensorboard>=2.16",
        "matplotlib>=3.8",
    ],
    # dlib: its HOG face detector (--detector dlib) and the ERT peer of evaluate --dlib and
    # bench; wheels for Linux x86_64 and aarch64, macOS and Windows, no compiler needed
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3.8"], "dlib": ["dlib-bin>=19.24"]},
    entry_points={"console_scripts": [
        f"fadenn-{job.replace('_', '-')}=fadenn_tf.cli.{job}:main" for job in JOBS]},
)
