import numpy as np
import pytest

from shapekit.errors import ShapekitError
from shapekit.metrics import landmark_errors, normalisers, parse_normalisation, summarize_landmark_errors


def test_summary_numbers():
    true = np.array([[[0, 0], [10, 0]], [[0, 0], [20, 0]]], float)
    pred = true + np.array([[[3, 4], [0, 1]], [[0, 2], [np.nan, np.nan]]])
    true[1, 1] = np.nan  # missing landmark is skipped
    errors = landmark_errors(pred, true)
    summary = summarize_landmark_errors(errors, np.array([100, 200]), ["a", "b"],
                                        normalisers(true, np.array([100, 200]), "pair", (0, 1)), "0,1")
    assert summary["n_images"] == 2 and summary["n_landmarks"] == 3
    assert summary["mean_px"] == pytest.approx((5 + 1 + 2) / 3)
    assert summary["per_landmark"][0]["mean_px"] == pytest.approx(3.5)
    assert summary["per_landmark"][1]["n"] == 1
    assert summary["mean_pct_long_side"] == pytest.approx((5 + 1 + 1) / 3)
    assert summary["pck_pct_long_side"]["1"] == pytest.approx(2 / 3)
    assert summary["nme"]["value"] == pytest.approx(np.mean([0.5, 0.1]))
    assert summary["ced"]["fraction"][-1] == pytest.approx(0.5)


def test_parse_normalisation():
    assert parse_normalisation("bbox", ["a"]) == ("bbox", None)
    assert parse_normalisation("a,b", ["a", "b"]) == ("pair", (0, 1))
    with pytest.raises(ShapekitError, match="out of range"):
        parse_normalisation("0,5", ["a", "b"])
