"""The handcrafted peer methods: LBP-TOP and Bi-WOOF clip inputs against hand computations, and the
shared linear-SVM fold fit (standardisation, class weights, missing classes, save/load)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from localmer.methods import bi_woof, lbptop_svm, svm

LBPTOP = {"grid": [5, 5], "radius": [1, 1, 1], "neighbours": 8, "patterns": "nri_uniform"}
BIWOOF = {"grid": [5, 5], "bins": 8}
SVM = {"C": 1.0, "class_weight": "balanced"}


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------ block grid


def test_block_index_splits_evenly_row_by_row():
    blocks = svm.block_index((192, 160), [5, 5])
    assert blocks.shape == (192, 160)
    assert blocks[0, 0] == 0 and blocks[0, -1] == 4 and blocks[-1, 0] == 20 and blocks[-1, -1] == 24
    assert set(np.bincount(blocks.ravel())) == {38 * 32, 39 * 32}  # 38 or 39 rows x 32 columns, no overlap
    with pytest.raises(ValueError, match="grid") as error:
        svm.block_index((4, 40), [5, 5])
    one_line(error)
    with pytest.raises(ValueError, match="grid"):
        svm.block_index((40, 40), 5)


# --------------------------------------------------------------------------------------------- LBP-TOP


def linear_volume(a: float, b: float, c: float, shape=(5, 7, 6)) -> np.ndarray:
    """100 + a t + b y + c x: bilinear interpolation reproduces a linear field, so a neighbour at offset
    (-sin th, cos th) (row, col) of a plane is >= its centre exactly when g . (-sin th, cos th) >= 0 for
    the plane's gradient g = (d/drow, d/dcol): XY (b, c), XT (a, c), YT (a, b)."""
    t, y, x = np.indices(shape)
    return (100 + a * t + b * y + c * x).astype(np.uint8)


# Hand-worked codes for a = 1, b = -3, c = 2 (neighbours p = 0..7 at 0, 45, ..., 315 deg; scikit-image's
# nri_uniform numbering: a uniform pattern of n ones is 1 + (n - 1) P + rot, rot = n - first zero when
# bit 0 is set, else P - first one):
#   XY g = (-3, 2): 3 sin + 2 cos >= 0 at p 0, 1, 2, 3       -> n 4, rot 4 - 4 = 0 -> 25
#   XT g = (1, 2):  -sin + 2 cos >= 0 at p 0, 1, 6, 7        -> n 4, rot 4 - 2 = 2 -> 27
#   YT g = (1, -3): -sin - 3 cos >= 0 at p 3, 4, 5, 6        -> n 4, rot 8 - 3 = 5 -> 30
# Time reversed (a = -1): XT g = (-1, 2) at p 0, 1, 2, 7 -> 26; YT g = (-1, -3) at p 2, 3, 4, 5 -> 31.
FORWARD_CODES = (25, 27, 30)
REVERSED_CODES = (25, 26, 31)


def one_hot_histograms(codes, blocks: int) -> np.ndarray:
    expected = np.zeros((blocks, 3, 59), dtype=np.float32)
    for plane, code in enumerate(codes):
        expected[:, plane, code] = 1
    return expected.ravel()


@pytest.mark.parametrize("grid", [[1, 1], [2, 2]])
def test_lbptop_codes_of_a_linear_volume_are_the_hand_worked_ones(grid):
    settings = {**LBPTOP, "grid": grid}
    volume = linear_volume(1, -3, 2)
    blocks = grid[0] * grid[1]
    got = lbptop_svm.clip_input({"faces": volume}, settings)
    assert got.dtype == np.float32 and got.shape == (blocks * 3 * 59,)
    assert np.array_equal(got, one_hot_histograms(FORWARD_CODES, blocks))
    # control: time reversed, the XT and YT codes change (and the forward expectation fails)
    reversed_got = lbptop_svm.clip_input({"faces": volume[::-1]}, settings)
    assert np.array_equal(reversed_got, one_hot_histograms(REVERSED_CODES, blocks))
    assert not np.array_equal(reversed_got, got)


def reference_lbptop(volume: np.ndarray, radius, grid) -> np.ndarray:
    """LBP-TOP with 4 neighbours (integer offsets, no interpolation) and plain codes sum(bit_p 2^p),
    neighbour p at (row - r sin(p 90 deg), col + r cos(p 90 deg)) of each plane, written voxel by voxel."""
    r_xy, r_xt, r_yt = radius
    frames, height, width = volume.shape
    mt, my, mx = max(r_xt, r_yt), max(r_xy, r_yt), max(r_xy, r_xt)
    offsets = [(0, 1), (-1, 0), (0, -1), (1, 0)]  # (row, col) for p = 0, 1, 2, 3
    planes = ((1, 2, r_xy), (0, 2, r_xt), (0, 1, r_yt))  # XY, XT, YT: (row axis, col axis) of (t, y, x), radius
    v = volume.astype(int)
    histograms = np.zeros((grid[0] * grid[1], 3, 16))
    for t in range(mt, frames - mt):
        for y in range(my, height - my):
            for x in range(mx, width - mx):
                block = (y * grid[0] // height) * grid[1] + x * grid[1] // width
                for index, (row_axis, col_axis, r) in enumerate(planes):
                    code = 0
                    for p, (dr, dc) in enumerate(offsets):
                        neighbour = [t, y, x]
                        neighbour[row_axis] += dr * r
                        neighbour[col_axis] += dc * r
                        code += 2**p * (v[tuple(neighbour)] >= v[t, y, x])
                    histograms[block, index, code] += 1
    return (histograms / histograms.sum(axis=2, keepdims=True)).ravel()


def test_lbptop_matches_a_voxel_by_voxel_reference_on_a_random_volume():
    volume = np.random.default_rng(3).integers(0, 8, (7, 10, 12), dtype=np.uint8)  # few levels: ties too
    settings = {"grid": [2, 3], "radius": [1, 2, 1], "neighbours": 4, "patterns": "default"}
    got = lbptop_svm.clip_input({"faces": volume}, settings)
    assert got.shape == (6 * 3 * 16,)
    assert np.allclose(got, reference_lbptop(volume, [1, 2, 1], [2, 3]), atol=1e-7)
    # controls: the radii of another plane, and the XT and YT planes swapped, give other histograms
    assert not np.allclose(got, reference_lbptop(volume, [2, 1, 1], [2, 3]), atol=1e-3)
    swapped = reference_lbptop(volume, [1, 2, 1], [2, 3]).reshape(6, 3, 16)[:, [0, 2, 1]].ravel()
    assert not np.allclose(got, swapped, atol=1e-3)


def test_lbptop_histograms_sum_to_one_per_block_and_plane():
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 40), dtype=np.uint8)
    got = lbptop_svm.clip_input({"faces": faces, "sample_id": "x/s1/c"}, {**LBPTOP, "radius": [2, 1, 1]})
    assert got.shape == (25 * 3 * 59,) and got.dtype == np.float32
    assert np.allclose(got.reshape(25, 3, 59).sum(axis=2), 1, atol=1e-6)


def test_lbptop_rejects_a_clip_too_short_for_the_temporal_radius_and_bad_faces():
    faces = np.zeros((4, 40, 40), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"casme2/sub01/EP01.*needs at least 5 frames, got 4") as error:
        lbptop_svm.clip_input({"faces": faces, "sample_id": "casme2/sub01/EP01"}, {**LBPTOP, "radius": [1, 2, 1]})
    one_line(error)
    lbptop_svm.clip_input({"faces": faces}, {**LBPTOP, "radius": [2, 1, 1]})  # control: XY radius 2 is fine
    for bad in (faces[0], faces.astype(np.float32)):
        with pytest.raises(ValueError, match="faces: expected") as error:
            lbptop_svm.clip_input({"faces": bad, "sample_id": "a"}, LBPTOP)
        one_line(error)
    with pytest.raises(ValueError, match="radius"):
        lbptop_svm.clip_input({"faces": faces}, {**LBPTOP, "radius": [1, 1]})
    with pytest.raises(ValueError, match="patterns"):
        lbptop_svm.clip_input({"faces": faces}, {**LBPTOP, "patterns": "ror"})


# --------------------------------------------------------------------------------------------- Bi-WOOF


def flow_clip(u: np.ndarray, v: np.ndarray, strain: np.ndarray) -> dict:
    magnitude = np.hypot(u, v)
    return {"sample_id": "smic/s1/x", "onset_apex": np.stack([u, v, strain, magnitude], axis=-1).astype(np.float32)}


def test_bi_woof_of_motion_in_two_blocks():
    u, v, strain = np.zeros((3, 50, 40))
    # block (1, 2) (rows 10-19, cols 16-23): rightward 2 px, strain 0.1 -> bin 4 ([0, 45) deg)
    u[10:20, 16:24], strain[10:20, 16:24] = 2, 0.1
    # block (3, 0) (rows 30-39, cols 0-7): half upward 1 px (-90 deg, bin 2), half 3 px down-left at
    # 157.5 deg (bin 7), strain 0.3; the upper half's magnitude 40 x 1, the lower half's 40 x 3
    v[30:35, 0:8] = -1
    u[35:40, 0:8], v[35:40, 0:8] = 3 * np.cos(np.radians(157.5)), 3 * np.sin(np.radians(157.5))
    strain[30:40, 0:8] = 0.3
    expected = np.zeros((25, 8))
    expected[7, 4] = 1 * (80 * 0.1)
    expected[15, [2, 7]] = np.array([40, 120]) / 160 * (80 * 0.3)
    expected /= np.linalg.norm(expected)
    got = bi_woof.clip_input(flow_clip(u, v, strain), BIWOOF)
    assert got.dtype == np.float32 and got.shape == (200,)
    assert np.allclose(got, expected.ravel(), atol=1e-6)
    # control: the same motion without strain weighting is another vector
    unweighted = np.zeros((25, 8))
    unweighted[7, 4], unweighted[15, [2, 7]] = 1, [0.25, 0.75]
    assert not np.allclose(got, unweighted.ravel() / np.linalg.norm(unweighted), atol=1e-3)


def test_bi_woof_of_a_zoom_field_by_quadrant():
    # expansion from (x 3.3, y 4.6): u = x - 3.3, v = y - 4.6 on 9 x 8 px, 2 x 2 blocks of 5 (top) or 4
    # (bottom) rows x 4 columns; no pixel lies on an axis or a diagonal through the centre, so each
    # quadrant's orientations fall in two bins told apart by |u| vs |v| (v down): top-left (-180, -90):
    # bin 0 if |u| > |v| else 1; top-right (-90, 0): 3 if |u| > |v| else 2; bottom-left (90, 180): 7
    # else 6; bottom-right (0, 90): 4 else 5. Strain 1 + block index per pixel; a block's weight is its
    # summed strain, so the 20-pixel blocks weigh more than the 16-pixel ones.
    y, x = np.indices((9, 8)).astype(float)
    u, v = x - 3.3, y - 4.6
    strain = 1.0 + (y >= 5) * 2 + (x >= 4)
    histograms, weights = np.zeros((4, 8)), np.zeros(4)
    for row in range(9):
        for col in range(8):
            block = (row >= 5) * 2 + (col >= 4)
            wide = abs(u[row, col]) > abs(v[row, col])
            bin_ = {0: (0, 1), 1: (3, 2), 2: (7, 6), 3: (4, 5)}[block][0 if wide else 1]
            histograms[block, bin_] += np.hypot(u[row, col], v[row, col])
            weights[block] += 1 + block
    expected = histograms / histograms.sum(axis=1, keepdims=True) * weights[:, None]
    expected = (expected / np.linalg.norm(expected)).ravel()
    got = bi_woof.clip_input(flow_clip(u, v, strain), {"grid": [2, 2], "bins": 8})
    assert np.allclose(got, expected, atol=1e-6)
    # controls: v taken as pointing up (the wrong sign convention), and blocks weighed by their mean
    # strain, give other vectors
    assert not np.allclose(bi_woof.clip_input(flow_clip(u, -v, strain), {"grid": [2, 2], "bins": 8}), expected)
    by_mean = expected.reshape(4, 8) / np.array([20, 20, 16, 16])[:, None]
    assert not np.allclose(got, (by_mean / np.linalg.norm(by_mean)).ravel(), atol=1e-3)


def test_bi_woof_without_motion_or_strain_is_the_zero_vector():
    zeros = np.zeros((50, 40))
    assert np.array_equal(bi_woof.clip_input(flow_clip(zeros, zeros, zeros + 1), BIWOOF), np.zeros(200))
    moving = zeros + 1
    assert np.array_equal(bi_woof.clip_input(flow_clip(moving, zeros, zeros), BIWOOF), np.zeros(200))
    # one moving block among motionless ones with strain: only its entries are non-zero, no NaN
    u = zeros.copy()
    u[:10, :8] = 1
    got = bi_woof.clip_input(flow_clip(u, zeros, zeros + 1), BIWOOF)
    assert np.isfinite(got).all() and np.flatnonzero(got).tolist() == [4]


def test_bi_woof_rejects_bad_fields():
    with pytest.raises(ValueError, match=r"smic/s1/x: onset_apex: expected \(H, W, 4\)") as error:
        bi_woof.clip_input({"sample_id": "smic/s1/x", "onset_apex": np.zeros((50, 40, 3))}, BIWOOF)
    one_line(error)
    clip = flow_clip(*np.zeros((3, 50, 40)))
    clip["onset_apex"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN") as error:
        bi_woof.clip_input(clip, BIWOOF)
    one_line(error)


# ------------------------------------------------------------------------------------------- linear SVM


def toy_data(seed=0, n=30, features=12, classes=3):
    """Clusters around class-specific means: linearly separable."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(0, 5, (classes, features))
    return (centres[y] + rng.normal(0, 0.3, (n, features))).astype(np.float32), y


def test_svm_fit_is_deterministic_and_separates_separable_data():
    x, y = toy_data()
    first = svm.fit(x, y, 3, SVM, seed=7, validation=None, checkpoint_dir=None, label="t")
    second = svm.fit(x, y, 3, SVM, seed=7, validation=None, checkpoint_dir=None, label="t")
    a, b = first.arrays(), second.arrays()
    assert sorted(a) == sorted(svm.ARRAYS)
    assert all(np.array_equal(a[name], b[name]) for name in a)
    assert (first.predict(x).argmax(axis=1) == y).all()
    assert first.history is None and first.scores_are_probabilities is False
    # control: one label changed changes the fit
    y_changed = y.copy()
    y_changed[0] = 1
    changed = svm.fit(x, y_changed, 3, SVM, seed=7, label="t").arrays()
    assert not np.array_equal(changed["coef"], a["coef"])


def test_svm_statistics_come_from_the_training_inputs_only():
    x, y = toy_data()
    x[:, 3] = 0.1  # a constant feature: scale 1
    fitted = svm.fit(x, y, 3, SVM, seed=0, label="t")
    arrays = fitted.arrays()
    assert np.array_equal(arrays["mean"], x.astype(np.float64).mean(axis=0))
    expected_scale = x.astype(np.float64).std(axis=0)
    expected_scale[3] = 1
    assert np.array_equal(arrays["scale"], expected_scale)
    test = toy_data(seed=1, n=6)[0]
    fitted.predict(test * 100 + 5)  # a perturbed test input: nothing fitted changes
    assert all(np.array_equal(fitted.arrays()[name], arrays[name]) for name in arrays)
    # control: a perturbed training input changes the statistics
    x[0, 0] += 1
    assert not np.array_equal(svm.fit(x, y, 3, SVM, seed=0, label="t").arrays()["mean"], arrays["mean"])


def test_svm_class_weights():
    x, y = toy_data(n=12)
    y = np.array([0] * 6 + [1] * 3 + [2] * 3)
    assert np.allclose(svm.fit(x, y, 3, SVM, seed=0).arrays()["class_weight"], [12 / 18, 12 / 9, 12 / 9])
    assert np.array_equal(svm.fit(x, y, 3, {**SVM, "class_weight": "none"}, seed=0).arrays()["class_weight"], [1, 1, 1])
    with pytest.raises(ValueError, match="class_weight") as error:
        svm.fit(x, y, 3, {**SVM, "class_weight": "auto"}, seed=0)
    one_line(error)


@pytest.mark.parametrize("present", [(0, 2), (0, 1, 3)])
def test_svm_class_missing_from_training_is_never_predicted(present):
    from sklearn.svm import LinearSVC

    x, index = toy_data(n=24, classes=len(present))
    y = np.array(present)[index]
    classes = max(present) + 1 if max(present) > 2 else 3
    fitted = svm.fit(x, y, classes, SVM, seed=0, label="t")
    test = toy_data(seed=5, n=40, classes=len(present))[0] + np.random.default_rng(1).normal(0, 3, (40, 12))
    scores = fitted.predict(test)
    missing = [c for c in range(classes) if c not in present]
    assert scores.shape == (40, classes)
    assert np.isneginf(scores[:, missing]).all() and np.isfinite(np.delete(scores, missing, axis=1)).all()
    assert fitted.arrays()["classes_present"].tolist() == [c in present for c in range(classes)]
    # the argmax is LinearSVC's own prediction (binary included), on the same standardised inputs
    arrays = fitted.arrays()
    reference = LinearSVC(C=1.0, class_weight="balanced", dual=True, max_iter=svm.MAX_ITER, random_state=0)
    reference.fit((x - arrays["mean"]) / arrays["scale"], y)
    assert np.array_equal(scores.argmax(axis=1), reference.predict((test - arrays["mean"]) / arrays["scale"]))


def test_svm_save_and_load_round_trip(tmp_path):
    x, y = toy_data()
    fitted = svm.fit(x, y, 3, SVM, seed=0, label="t")
    path = tmp_path / "fold.model"  # not .npz: np.savez must not add a suffix
    fitted.save(str(path))
    loaded = svm.load(str(path))
    assert np.array_equal(loaded.predict(x), fitted.predict(x))
    assert all(np.array_equal(loaded.arrays()[k], v) for k, v in fitted.arrays().items())
    np.savez(tmp_path / "other.npz", mean=np.zeros(3))
    with pytest.raises(ValueError, match="missing") as error:
        svm.load(str(tmp_path / "other.npz"))
    one_line(error)


def test_svm_logs_a_convergence_warning(monkeypatch, caplog):
    x, y = toy_data()
    monkeypatch.setattr(svm, "MAX_ITER", 1)
    with caplog.at_level(logging.WARNING, logger="localmer.methods.svm"):
        svm.fit(x, y, 3, SVM, seed=0, label="fold s01")
    assert any("fold s01: linear SVM did not converge" in record.getMessage() for record in caplog.records)
    caplog.clear()
    monkeypatch.setattr(svm, "MAX_ITER", 10_000)  # control: converged, nothing logged
    with caplog.at_level(logging.WARNING, logger="localmer.methods.svm"):
        svm.fit(x, y, 3, SVM, seed=0, label="fold s01")
    assert not caplog.records


def test_svm_rejects_bad_inputs():
    x, y = toy_data()
    for bad_x, bad_y, match in (
        (x[..., None], y, "x: expected a 2-D array"),
        (x, y[:-1], "y: expected 30 integer"),
        (x, y.astype(float), "y: expected 30 integer"),
        (x, y + 1, r"y: class indices must lie in \[0, 3\)"),
        (x, np.zeros(30, dtype=int), "at least 2 classes"),
    ):
        with pytest.raises(ValueError, match=match) as error:
            svm.fit(bad_x, bad_y, 3, SVM, seed=0, label="t")
        one_line(error)
    fitted = svm.fit(x, y, 3, SVM, seed=0)
    with pytest.raises(ValueError, match=r"inputs: expected a 2-D array \(clips, 12\)") as error:
        fitted.predict(x[:, :5])
    one_line(error)


# -------------------------------------------------------------------------------------------- methods


@pytest.mark.parametrize("method", [lbptop_svm.METHOD, bi_woof.METHOD])
def test_methods_are_described(method):
    assert method.deep is False and method.model_suffix == ".npz" and method.fit is svm.fit
    assert method.source == {"lbptop_svm": "aligned", "bi_woof": "flow"}[method.name]
    (published,) = method.published
    assert set(published.parts) == {"FULL", "smic", "casme2", "samm"}
    assert published.parts["FULL"] == {"lbptop_svm": (0.5882, 0.5785), "bi_woof": (0.6296, 0.6227)}[method.name]
