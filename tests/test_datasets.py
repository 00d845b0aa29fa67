import os

import numpy as np
import pytest
from PIL import Image

from conftest import data_dir
from shapekit.errors import InputError, ShapekitError
from shapekit.io import image_size, load_landmark_set, read_tps, split_dataset, tps


@pytest.mark.parametrize("name, count", [("mollusc-shells", 15), ("drosophila-wings", 12), ("lizard-toepads", 9)])
def test_real_tps_datasets_load_with_y_flipped(name, count):
    data = load_landmark_set(data_dir(name))
    assert data.num_landmarks == count and len(data) > 40
    raw = read_tps(data.annotation_file)
    first = data.records[0]
    _, height = image_size(first.image_path)
    np.testing.assert_allclose(first.points[:, 1], height - raw[0].points[:, 1])
    points = np.concatenate([r.points for r in data.records])
    assert (points >= -1).all()


def test_coco_dataset_infers_left_right_pairs():
    data = load_landmark_set(data_dir("garments-fld"))
    assert data.names[0] == "left_collar"
    assert (0, 1) in data.flip_pairs and (4, 5) in data.flip_pairs


def _tiny_tps_dataset(root, n=3, lm=2):
    (root / "images").mkdir(parents=True)
    specs = []
    for k in range(n):
        Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(root / "images" / f"{k}.png")
        specs.append(tps.TpsSpecimen(np.full((lm, 2), 10.0 + k), image=f"{k}.png", id=str(k)))
    tps.write_tps(root / "landmarks.tps", specs)
    return root


def test_image_listed_in_tps_but_missing(tmp_path):
    root = _tiny_tps_dataset(tmp_path / "d")
    os.remove(root / "images" / "1.png")
    with pytest.raises(InputError) as info:
        load_landmark_set(root)
    message = str(info.value)
    assert message.startswith(str(root / "landmarks.tps")) and "'1.png' is listed but missing" in message


def test_landmark_count_mismatch_between_specimens(tmp_path):
    root = _tiny_tps_dataset(tmp_path / "d")
    text = (root / "landmarks.tps").read_text().replace("LM=2\n12.00 12.00\n12.00 12.00", "LM=1\n12.00 12.00")
    (root / "landmarks.tps").write_text(text)
    with pytest.raises(InputError, match=r"landmarks.tps:11: specimen 3 \(ID=2\) has LM=1 but the first specimen has LM=2"):
        load_landmark_set(root)


def test_wrong_y_origin_is_detected(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(root / "images" / "a.png")
    # top-origin coordinates near the bottom of a 100-px image, read as tpsDig (y up) -> outside? no: inside.
    tps.write_tps(root / "landmarks.tps", [tps.TpsSpecimen(np.array([[10.0, 150.0], [20, 180]]), image="a.png")])
    with pytest.raises(InputError, match="--y-origin top"):
        load_landmark_set(root)


def test_not_a_dataset_folder(tmp_path):
    with pytest.raises(InputError, match="not a landmark dataset"):
        load_landmark_set(tmp_path)


def test_split_links_images_and_subsets_annotations(tmp_path):
    source = data_dir("drosophila-wings")
    train, test = split_dataset(source, tmp_path / "split", test_fraction=0.25, seed=3)
    a, b = load_landmark_set(train), load_landmark_set(test)
    full = load_landmark_set(source)
    assert len(a) + len(b) == len(full) and len(b) == round(len(full) * 0.25)
    assert not {r.id for r in a.records} & {r.id for r in b.records}
    by_id = {r.id: r for r in full.records}
    for record in b.records:
        np.testing.assert_allclose(record.points, by_id[record.id].points)
        assert (test / "images" / record.image_path.name).is_symlink()
    with pytest.raises(ShapekitError, match="refusing"):
        split_dataset(train, tmp_path / "split", names=("train", "x"))
