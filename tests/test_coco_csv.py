import json

import numpy as np
import pytest

from conftest import data_dir
from shapekit.errors import InputError
from shapekit.io import coco, csv_landmarks


def test_real_coco_round_trip(tmp_path):
    source = data_dir("garments-fld") / "annotations.json"
    original = coco.read_coco_keypoints(source)
    assert original.keypoint_names[:2] == ["left_collar", "right_collar"]
    coco.write_coco_keypoints(tmp_path / "copy.json", original)
    again = coco.read_coco_keypoints(tmp_path / "copy.json")
    assert again.keypoint_names == original.keypoint_names and again.skeleton == original.skeleton
    assert [i["file_name"] for i in again.images] == [i["file_name"] for i in original.images]
    for a, b in zip(original.annotations, again.annotations):
        np.testing.assert_allclose(original.keypoints(a), again.keypoints(b))


def _write(tmp_path, payload):
    path = tmp_path / "ann.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_invalid_json_reports_line(tmp_path):
    path = _write(tmp_path, '{\n "images": [],\n "annotations": [,]\n}')
    with pytest.raises(InputError, match=rf"^{path}:3: invalid JSON"):
        coco.read_coco_keypoints(path)


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["annotations"][0].update(keypoints=[1, 2, 2]), "has 3 keypoint values, expected 6"),
    (lambda d: d.pop("categories"), "has no 'categories'"),
    (lambda d: d["categories"][0].pop("keypoints"), "no category with a 'keypoints' list"),
    (lambda d: d["annotations"][0].update(image_id=99), "image_id 99 which is not in 'images'"),
    (lambda d: d["annotations"][0].pop("keypoints"), "has no 'keypoints' field"),
])
def test_malformed_coco_one_line_errors(tmp_path, mutate, words):
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": [1, 2, 2, 3, 4, 2]}],
            "categories": [{"id": 1, "name": "x", "keypoints": ["a", "b"]}]}
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as info:
        coco.read_coco_keypoints(path)
    assert str(info.value).startswith(str(path)) and words in str(info.value)


def test_csv_round_trip_with_missing_and_confidence(tmp_path):
    points = np.array([[[1.5, 2.25], [np.nan, np.nan]], [[3, 4], [5, 6]]])
    conf = np.array([[0.9, 0.1], [0.8, 0.7]])
    csv_landmarks.write_csv(tmp_path / "p.csv", ["a.jpg", "b.jpg"], points, ["tip", "base"], conf)
    images, again, names = csv_landmarks.read_csv(tmp_path / "p.csv")
    assert images == ["a.jpg", "b.jpg"] and names == ["tip", "base"]
    np.testing.assert_allclose(again, points)


def test_csv_bad_number_names_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("image,a_x,a_y\nx.jpg,1,2\ny.jpg,abc,3\n")
    with pytest.raises(InputError, match=rf"^{path}:3: a_x is not a number"):
        csv_landmarks.read_csv(path)
