import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("SHAPEKIT_NO_PROGRESS", "1")
# Automatic ONNX exports (--engine auto on fp32 CPUs) go to a throw-away cache, not the user's ~/.cache.
os.environ.setdefault("SHAPEKIT_CACHE_DIR", tempfile.mkdtemp(prefix="shapekit-test-cache-"))

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SHAPEKIT_DATA", REPO.parent / "shared" / "data"))
LANDMARK_SETS = ["mollusc-shells", "drosophila-wings", "lizard-toepads"]


def data_dir(name: str) -> Path:
    path = DATA / name
    if not path.is_dir():
        pytest.fail(f"shared dataset {path} is missing (set SHAPEKIT_DATA)")
    return path


@pytest.fixture(scope="session")
def synthetic_split(tmp_path_factory):
    """A procedural TPS dataset split into train/ and test/ folders."""
    from shapekit.io.landmark_dataset import split_dataset
    from shapekit.synthetic import make_landmark_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_landmark_dataset(root / "all", n_images=100, seed=1)
    return split_dataset(root / "all", root, test_fraction=0.2, seed=0)


@pytest.fixture(scope="session")
def trained_run(synthetic_split, tmp_path_factory):
    """A small heatmap model trained once through the CLI and shared by the inference tests."""
    from shapekit.cli import main

    out = tmp_path_factory.mktemp("run") / "run"
    args = ["train", "--task", "landmarks", "--data", str(synthetic_split[0]), "--out", str(out), "--epochs", "14",
            "--input-size", "128", "--batch-size", "16", "--lr", "0.002"]
    main(args)
    return out
