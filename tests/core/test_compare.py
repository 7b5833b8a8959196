"""The Compare view's numbers: smoothing, grouping, bands on a common grid, hover, CSV."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from studio.core.runs.compare import (
    Curves,
    common_grid,
    csv_rows,
    differing_keys,
    group_band,
    group_runs,
    nearest_value,
    on_grid,
    smooth,
    write_csv,
)

NAN = float("nan")


def test_ema_is_debiased_and_skips_gaps() -> None:
    out = smooth(np.array([1.0, 3.0, NAN, 5.0]), "ema", 0.5)
    # by hand: ema 0.5/w 0.5 -> 1; 1.75/0.75; gap; 3.375/0.875
    np.testing.assert_allclose(out[[0, 1, 3]], [1.0, 1.75 / 0.75, 3.375 / 0.875])
    assert math.isnan(out[2])


def test_ema_matches_the_recurrence_on_long_curves_at_every_strength() -> None:
    """The closed form over chunks against the plain recurrence, gaps included, from the
    weakest smoothing to the strongest, on curves longer than one chunk."""
    rng = np.random.default_rng(0)
    y = 2.0 + np.cumsum(rng.normal(0, 0.1, 12_000))
    y[rng.random(len(y)) < 0.05] = NAN
    for strength in (0.01, 0.3, 0.6, 0.9, 0.99):
        ema = weight = 0.0
        expected = []
        for v in y:
            if not math.isnan(v):
                ema = strength * ema + (1 - strength) * v
                weight = strength * weight + (1 - strength)
            expected.append(ema / weight if weight and not math.isnan(v) else NAN)
        np.testing.assert_allclose(smooth(y, "ema", strength), expected, rtol=1e-9, equal_nan=True)


def test_running_average_is_a_trailing_window_over_finite_points() -> None:
    out = smooth(np.array([1.0, 3.0, NAN, 5.0, 7.0]), "mean", 0.02)  # window 2
    np.testing.assert_allclose(out[[0, 1, 3, 4]], [1.0, 2.0, 5.0, 6.0])
    assert math.isnan(out[2])


def test_gaussian_is_centred_and_normalised_at_the_edges() -> None:
    y = np.zeros(7)
    y[2] = 1.0
    out = smooth(y, "gaussian", 0.05)  # sigma 1 point, kernel to 3 sigma
    e = math.exp
    den = 2 * e(-2) + 2 * e(-0.5) + 1 + e(-4.5)  # offsets -2..3 fall inside the array
    assert out[2] == pytest.approx(1 / den)
    assert out[1] == pytest.approx(e(-0.5) / (e(-0.5) * 2 + 1 + e(-2) + e(-4.5)))  # offsets -1..3 fall inside
    np.testing.assert_allclose(smooth(np.ones(9), "gaussian", 0.3), np.ones(9))


def test_no_smoothing_and_zero_strength_leave_values_alone() -> None:
    y = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(smooth(y, "none", 0.9), y)
    for method in ("ema", "mean", "gaussian"):
        np.testing.assert_array_equal(smooth(y, method, 0.0), y)
    with pytest.raises(ValueError):
        smooth(y, "median", 0.5)


def test_grouping_by_a_differing_setting() -> None:
    configs = [{"train": {"lr": lr, "steps": 8}, "run": {"name": n}} for n, lr in
               (("a", 1e-3), ("b", 3e-3), ("c", 1e-3), ("d", 3e-3))]
    assert differing_keys(configs) == ["run.name", "train.lr"]
    assert group_runs(configs, "train.lr") == {"0.001": [0, 2], "0.003": [1, 3]}
    assert group_runs(configs, "model.depth") == {"—": [0, 1, 2, 3]}


def test_band_on_a_shared_grid() -> None:
    x = np.array([1.0, 2.0, 3.0])
    band = group_band("g", [(x, np.array([1.0, 2.0, 3.0])), (x, np.array([3.0, 4.0, 5.0]))], "minmax")
    np.testing.assert_array_equal(band.x, x)
    np.testing.assert_allclose(band.mean, [2, 3, 4])
    np.testing.assert_allclose(band.lo, [1, 2, 3])
    np.testing.assert_allclose(band.hi, [3, 4, 5])
    std = group_band("g", [(x, np.array([1.0, 2.0, 3.0])), (x, np.array([3.0, 4.0, 5.0]))], "std")
    np.testing.assert_allclose(std.lo, [1, 2, 3])  # population std of two points 2 apart is 1
    np.testing.assert_allclose(std.hi, [3, 4, 5])


def test_runs_on_different_grids_are_interpolated_and_only_count_where_they_reach() -> None:
    short = (np.array([0.0, 2.0]), np.array([0.0, 2.0]))
    long = (np.array([0.0, 1.0, 2.0, 3.0, 4.0]), np.full(5, 10.0))
    grid = common_grid([short[0], long[0]])
    np.testing.assert_array_equal(grid, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(on_grid(grid, *short)[:3], [0, 1, 2])
    assert np.isnan(on_grid(grid, *short)[3:]).all()
    band = group_band("g", [short, long], "minmax")
    np.testing.assert_allclose(band.mean, [5, 5.5, 6, 10, 10])
    np.testing.assert_allclose(band.lo, [0, 1, 2, 10, 10])


def test_hover_picks_the_nearest_finite_point() -> None:
    x = np.array([0.0, 10.0, 20.0, 30.0])
    y = np.array([1.0, 2.0, NAN, 4.0])
    assert nearest_value(x, y, 12) == (10.0, 2.0)
    assert nearest_value(x, y, 19) == (10.0, 2.0)  # 20 has no value
    assert nearest_value(x, y, 29) == (30.0, 4.0)
    assert nearest_value(x, np.full(4, NAN), 5) is None


def test_csv_rows_and_atomic_write(tmp_path: Path) -> None:
    rows = csv_rows([("a", np.array([1.0, 2.0]), np.array([0.5, NAN])), ("b", np.array([3.0]), np.array([0.25]))])
    assert rows == [["a", "1.0", "0.5"], ["b", "3.0", "0.25"]]
    path = tmp_path / "view.csv"
    write_csv(path, ["series", "step", "loss"], rows)
    with path.open(newline="") as f:
        assert list(csv.reader(f)) == [["series", "step", "loss"], *rows]
    assert [p.name for p in tmp_path.iterdir()] == ["view.csv"]  # no temporary left behind


def test_metric_x_axis_interpolates_eval_metrics_onto_training_steps() -> None:
    e = np.empty(0)
    c = Curves("r", step=np.array([1.0, 2.0, 3.0, 4.0]), tokens=e, time=e, loss=np.ones(4),
               eval_step=np.array([2.0, 4.0]), eval_tokens=e, eval_time=e, eval_loss=np.ones(2),
               metrics={"accuracy": np.array([50.0, 70.0])}, train_metrics={"lr": np.array([1.0, 2.0, 3.0, 4.0])})
    x = c.x("metric:accuracy")
    assert math.isnan(x[0])
    np.testing.assert_allclose(x[1:], [50, 60, 70])
    np.testing.assert_allclose(c.x("metric:lr", evaluation=True), [2, 4])
    assert c.metric_names() == ["accuracy", "lr"]
