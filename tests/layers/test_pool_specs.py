"""The pooling registry: spec grammar, option checks, one entry per method, both front ends."""
import math

import pytest

from cnnjax import nn
from cnnjax.layers import pool_specs


def test_every_canonical_spec_parses_and_builds_its_module():
    for spec in pool_specs.POOL_SPECS:
        parsed = pool_specs.parse(spec)
        module = pool_specs.build(spec, 3, 2, 1)
        assert type(module).__name__ == parsed.method.module
        assert pool_specs.method_of(module) is parsed.method


def test_every_method_has_a_linen_module_and_a_known_family():
    for method in pool_specs.METHODS:
        assert hasattr(nn, method.module), method.module
        assert method.family in pool_specs.FAMILIES, method
        assert method.geometry in ("window", "blur", "maxblur", "adaptive", "global"), method


@pytest.mark.parametrize("spec, fields, learned, stochastic", [
    ("lp:p=3", {"p": 3.0}, False, False),
    ("LP:Learn", {"learn_p": True}, True, False),
    ("mixed:learn,per_channel", {"learn_alpha": True, "per_channel": True}, True, False),
    ("gem:p=2.5", {"p": 2.5}, False, False),
    ("lse:learn", {"learn_r": True}, True, False),
    ("blur:k=5", {"window_shape": 5}, False, False),
    ("maxblur:k=4", {"filter_size": 4}, False, False),
    ("tree:depth=3", {"depth": 3}, True, False),
    ("stochastic", {}, False, True),
    ("fractional", {}, False, True),
    ("lp:p=inf", {"p": math.inf}, False, False),
])
def test_parse_options(spec, fields, learned, stochastic):
    parsed = pool_specs.parse(spec)
    assert dict(parsed.fields) == {**parsed.method.defaults, **fields}
    assert parsed.learned is learned and parsed.stochastic is stochastic


@pytest.mark.parametrize("spec, match", [
    ("lp:p=-1", r"option 'p' in pooling spec 'lp:p=-1' must be a number > 0"),
    ("mixed:alpha=1.5", r"must be a number in \[0, 1\], got '1.5'"),
    ("blur:k=0", r"option 'k' .* must be an int >= 1"),
    ("blur:k=2.5", r"option 'k' in pooling spec 'blur:k=2.5' needs an int"),
    ("tree:depth=1", r"must be an int >= 2"),
    ("gem:p=0", r"must be a finite number > 0"),
    ("soft:learn", r"unknown option 'learn'"),
    ("nope", r"unknown pooling spec 'nope'; valid specs are 'max'"),
])
def test_bad_specs_are_one_sentence_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        pool_specs.parse(spec)


def test_split_spec_list_keeps_options_with_their_spec():
    assert pool_specs.split_spec_list("max,mixed:learn,per_channel,avg,lp:p=3,blur:k=5") == [
        "max", "mixed:learn,per_channel", "avg", "lp:p=3", "blur:k=5"]
    assert pool_specs.split_spec_list("lp,learn,gem") == ["lp:learn", "gem"]
    assert pool_specs.split_spec_list(" , ") == []


def test_frontends():
    assert set(pool_specs.specs_of("linen")) == set(pool_specs.POOL_SPECS)
    assert pool_specs.specs_of("nnx") == pool_specs.POOL_SPECS
    with pytest.raises(ValueError, match="frontend must be 'linen' or 'nnx'"):
        pool_specs.build("max", frontend="haiku")


def test_method_of_ignores_foreign_classes():
    class MaxPool:  # same name, not a cnnjax module
        pass
    assert pool_specs.method_of(MaxPool()) is None
