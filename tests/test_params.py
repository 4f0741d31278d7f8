"""params.yaml -> typed dataclasses: defaults, the shipped file, and every kind of bad key."""

import pytest

from mtdepth.errors import MtDepthError
from mtdepth.params import Params, load_params, override, params_from_dict, to_dict


DEMO_PROFILE = {
    ("data", "height"): 96,
    ("data", "width"): 192,
    ("train", "epochs"): 10,
    ("model", "fusion_channels"): 32,
    ("model", "head_channels"): 16,
    ("model", "unet_channels"): [8, 16, 32, 64, 128],
}


def test_shipped_params_file_is_the_defaults_but_for_the_demo_profile():
    """params.yaml is the demo profile: the dataclass defaults except the lines marked demo."""
    shipped, defaults = to_dict(load_params("params.yaml")), to_dict(Params())
    changed = {
        (section, key): value
        for section, values in shipped.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if defaults[section][key] != value
    }
    assert changed == DEMO_PROFILE
    assert {k: v for k, v in shipped.items() if not isinstance(v, dict)} == {
        k: v for k, v in defaults.items() if not isinstance(v, dict)
    }


def test_defaults_are_the_papers_table_2_where_nothing_measured_better():
    p = Params()
    assert (p.data.height, p.data.width) == (256, 512)
    assert p.train.batch == 4 and p.train.epochs == 100
    assert p.train.lr == 4e-3 and p.train.schedule == "cosine"  # not Table 2's 1e-4: docs/training.md, "The schedule"
    assert p.sparse.keep_prob == 0.05
    assert p.model.unet_channels == (16, 32, 64, 128, 256)  # twice Table 2's: docs/results.md
    assert p.model.attention_dim == 32 and p.model.fusion_channels == 128
    assert (p.loss.w_init, p.loss.w_obj, p.loss.w_seg) == (0.5, 3.0, 1.0)


def test_values_are_typed_and_ints_widen_to_float():
    p = params_from_dict({"sparse": {"keep_prob": 1}, "data": {"scenes": ["Scene01"], "last_frame": 5}})
    assert p.sparse.keep_prob == 1.0 and isinstance(p.sparse.keep_prob, float)
    assert p.data.scenes == ("Scene01",) and p.data.last_frame == 5


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"sparse": {"keep_pro": 0.1}}, "unknown key 'sparse.keep_pro'"),
        ({"nonsense": 1}, "unknown key 'nonsense'"),
        ({"sparse": {"keep_prob": "high"}}, "sparse.keep_prob must be float"),
        ({"sparse": {"keep_prob": 1.5}}, "sparse.keep_prob must be in (0, 1]"),
        ({"train": {"batch": 2.5}}, "train.batch must be int"),
        ({"train": {"accumulate": "2"}}, "train.accumulate must be int"),
        ({"train": {"precision": "fp8"}}, "train.precision must be 'auto', 'fp32', 'bf16' or 'fp16'"),
        ({"data": {"height": 250}}, "data.height must be a positive multiple of 32"),
        ({"data": {"scenes": ["Scene99"]}}, "data.scenes must be a subset"),
        ({"store": {"split": "sideways"}}, "store.split must be 'random' or 'scene'"),
        ({"model": {"attention_size": [16]}}, "model.attention_size must have 2 items"),
        ({"sparse": 0.05}, "sparse must be a mapping"),
    ],
)
def test_bad_keys_name_the_key(raw, fragment):
    with pytest.raises(MtDepthError) as info:
        params_from_dict(raw, "params.yaml")
    message = str(info.value)
    assert message.startswith("params.yaml: ") and fragment in message
    assert "\n" not in message


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("sparse: [unclosed\n")
    with pytest.raises(MtDepthError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(MtDepthError, match="params file not found"):
        load_params(tmp_path / "absent.yaml")


def test_override_revalidates_and_ignores_none():
    p = override(Params(), "sparse", keep_prob=0.1)
    assert p.sparse.keep_prob == 0.1
    assert override(p, "sparse", keep_prob=None) == p
    with pytest.raises(MtDepthError, match="options: sparse.keep_prob"):
        override(p, "sparse", keep_prob=0.0)


def test_to_dict_round_trips():
    assert params_from_dict(to_dict(Params())) == Params()


def test_unquoted_on_off_read_as_yaml_booleans_mean_on_and_off():
    """`dvc exp run -S train.compile=off` writes `off` unquoted, which YAML 1.1 reads as False."""
    p = params_from_dict(__import__("yaml").safe_load("train: {compile: off, channels_last: on}"))
    assert (p.train.compile, p.train.channels_last) == ("off", "on")
