"""plot_receptive_field: receptive field per layer, from a layer list or by tracing a model."""
import pytest

import cnnjax
from cnnjax import viz
from tests.viz._helpers import TinyNet, TinyResNet, png_shape


def test_layer_list_matches_receptive_field():
    layers = [(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 0, 2)]
    rows = viz.receptive_field_table(layers, (16, 12, 3))
    expected = cnnjax.receptive_field(layers)
    assert [r["size"] for r in rows] == [(e.size, e.size) for e in expected]
    assert [r["jump"] for r in rows] == [(e.jump, e.jump) for e in expected]
    assert [r["start"] for r in rows] == [(e.start, e.start) for e in expected]
    assert [r["out_size"] for r in rows] == [(16, 12), (8, 6), (4, 2)]


def test_stride_one_stack_grows_linearly():
    # Seeds: L stride-1 layers of kernel K see 1 + L (K - 1) pixels.
    rows = viz.receptive_field_table([(5, 1, 2, 1)] * 4, (28, 28))
    assert [r["size"][0] for r in rows] == [1 + L * 4 for L in range(1, 5)]


def test_model_is_traced_in_call_order():
    rows = viz.receptive_field_table(TinyNet(), (8, 8, 1))
    assert [r["name"] for r in rows] == ["Conv_0 (Conv)", "MaxPool_0 (MaxPool)",
                                         "Conv_1 (Conv)", "AvgPool_0 (AvgPool)"]
    same = viz.receptive_field_table([(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 0, 1), (2, 2, 0, 1)],
                                     (8, 8))
    for traced, listed in zip(rows, same):
        assert {k: traced[k] for k in ("size", "jump", "start", "out_size")} == \
               {k: listed[k] for k in ("size", "jump", "start", "out_size")}


def test_branches_follow_the_deepest_path():
    rows = {r["name"].split(" ")[0]: r for r in viz.receptive_field_table(TinyResNet(), (8, 8))}
    main = cnnjax.receptive_field([(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 1, 1)])
    shortcut = cnnjax.receptive_field([(3, 1, 1, 1), (1, 2, 0, 1)])
    assert rows["Conv_2"]["size"][0] == main[-1].size
    assert rows["Conv_3"]["size"][0] == shortcut[-1].size  # the shortcut starts after Conv_0
    # The global pool after the residual sum sees the whole input, via the longest path.
    assert rows["GlobalAvgPool_0"]["size"][0] >= 8


def test_plot(tmp_path):
    path = viz.plot_receptive_field(TinyNet(), (8, 8, 1), tmp_path / "rf.png", figsize=(5, 3),
                                    dpi=40)
    assert png_shape(path) == (120, 200)
    path = viz.plot_receptive_field([(3, 1, 1, 1)] * 3, (10, 14), tmp_path / "l.png", dpi=20)
    assert png_shape(path) == (96, 220)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match=r"plot_receptive_field: input_shape must be"):
        viz.receptive_field_table([(3, 1, 1, 1)], (8,))
    with pytest.raises(TypeError, match=r"plot_receptive_field: layers\[1\] must be"):
        viz.receptive_field_table([(3, 1, 1, 1), (3, 1)], (8, 8))
    with pytest.raises(ValueError, match=r"plot_receptive_field: layers\[1\] .* does not fit"):
        viz.receptive_field_table([(3, 1, 0, 1), (9, 1, 0, 1)], (8, 8))


@pytest.mark.parametrize("name, shape", [("lenet5", (28, 28, 1)), ("googlenet", (32, 32, 3))])
def test_agrees_with_the_model_summary(name, shape):
    # cnnjax.models.summary tracks fields through every module independently; residual adds
    # and Inception concatenations must give the same deepest field here.
    from cnnjax import models

    model = models.get(name, num_classes=10)
    line = next(l for l in models.summary(model, shape).splitlines() if "Receptive" in l)
    expected = int(line.split(":")[1].split("×")[0])
    rows = viz.receptive_field_table(model, shape)
    assert max(r["size"][0] for r in rows if "Global" not in r["name"]) == expected
