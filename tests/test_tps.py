import numpy as np
import pytest

from conftest import LANDMARK_SETS, data_dir
from shapekit.errors import InputError
from shapekit.io import tps


@pytest.mark.parametrize("name", LANDMARK_SETS)
def test_real_tps_round_trip(name, tmp_path):
    source = data_dir(name) / "landmarks.tps"
    original = tps.read_tps(source)
    tps.write_tps(tmp_path / "copy.tps", original)
    again = tps.read_tps(tmp_path / "copy.tps")
    assert len(again) == len(original) > 10
    for a, b in zip(original, again):
        np.testing.assert_allclose(a.points, b.points, atol=1e-9)
        assert (a.image, a.id, a.scale) == (b.image, b.id, b.scale)


def test_scale_comment_curves_and_unknown_keys_survive(tmp_path):
    text = ("LM=2\n1.5 2.5\n3 4\nCURVES=1\nPOINTS=3\n0 0\n1 1\n2 2\n"
            "IMAGE=C:\\\\scans\\\\beetle 1.jpg\nID=7\nSCALE=0.0125\nCOMMENT=left side\nVARIABLES=sex\n"
            "LM=2\nNA NA\n5 6\nIMAGE=b.jpg\n")
    path = tmp_path / "in.tps"
    path.write_text(text)
    specs = tps.read_tps(path)
    assert specs[0].scale == pytest.approx(0.0125)
    assert specs[0].comment == "left side"
    assert specs[0].extra == {"VARIABLES": "sex"}
    assert specs[0].curves[0].shape == (3, 2)
    assert np.isnan(specs[1].points[0]).all()
    tps.write_tps(tmp_path / "out.tps", specs)
    again = tps.read_tps(tmp_path / "out.tps")
    assert again[0].scale == pytest.approx(0.0125) and again[0].image == specs[0].image
    np.testing.assert_allclose(again[0].curves[0], specs[0].curves[0])
    assert np.isnan(again[1].points[0]).all()


def test_lm3_reads_3d_points(tmp_path):
    path = tmp_path / "skull.tps"
    path.write_text("LM3=2\n1 2 3\n4 5 6\nID=a\n")
    assert tps.read_tps(path)[0].points.shape == (2, 3)


@pytest.mark.parametrize("text, line, words", [
    ("LM=3\n1 2\n3 4\nIMAGE=a.jpg\n", 1, "LM=3 announces 3 points but only 2"),
    ("LM=2\n1 2\n3 4\n5 6\nIMAGE=a.jpg\n", 4, "unexpected line"),
    ("LM=2\n1 2\n3 x\n", 3, "not a number"),
    ("LM=two\n", 1, "whole number"),
    ("LM=2\n1 2 3\n4 5\n", 2, "expected 2 coordinates"),
    ("IMAGE=a.jpg\nLM=1\n1 1\n", 1, "before the first LM="),
    ("LM=2\n1 2\n", 1, "file ends after 1"),
])
def test_malformed_tps_names_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "bad.tps"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        tps.read_tps(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and words in message
    assert "\n" not in message


def test_y_origin_conversion_is_an_involution():
    points = np.array([[1.0, 2.0], [3.0, 90.0]])
    flipped = tps.to_top_origin(points, 100)
    np.testing.assert_allclose(flipped, [[1, 98], [3, 10]])
    np.testing.assert_allclose(tps.from_top_origin(flipped, 100), points)
