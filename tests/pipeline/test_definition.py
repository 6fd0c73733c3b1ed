"""Pipeline definitions: the ready ones load, and every mistake fails before any work, clearly."""

import pytest

from mrsdask.errors import InputError, ParameterError
from mrsdask.pipeline import load_pipeline, parse_pipeline, shipped_pipelines


def _parse(steps, overrides=()):
    return parse_pipeline({"name": "t", "steps": steps}, "t.yaml", overrides)


def test_the_ready_pipelines_load_and_check():
    names = shipped_pipelines()
    assert {"cubes", "fringe-cubes", "background-fringe-cubes", "master-background-multi"} <= set(names)
    for name in names:
        pipeline = load_pipeline(name)
        assert pipeline.name == name and pipeline.description
        assert pipeline.steps[-1].name in ("export", "extract")
    fringe = load_pipeline("fringe-cubes")
    assert [s.name for s in fringe.steps] == ["fringe", "cube", "export"]
    assert [s.output for s in fringe.steps] == ["01-fringe.zarr", "cubes.zarr", "s3d"]
    assert fringe.steps[1].params["output_type"] == "channel"
    assert fringe.steps[1].params["weighting"] == "drizzle"  # default filled in


def test_overrides_change_parameters_before_the_checks():
    pipeline = load_pipeline("cubes", ["cube.output_type=multi", "cube.channels=[1, 2]", "export.prefix=obs7"])
    assert [s.name for s in pipeline.steps] == ["outlier", "cube", "export", "extract"]
    cube = pipeline.steps[1]
    assert cube.params["output_type"] == "multi" and cube.params["channel"] == ["1", "2"]
    assert pipeline.steps[2].params["prefix"] == "obs7"
    outlier = load_pipeline("cubes", ["outlier.kernel_size=5 5", "outlier.skip=true"]).steps[0]
    assert outlier.params["kernel_size"] == ["5 5"] and outlier.params["skip"] is True
    assert outlier.params["threshold_percent"] == 99.8  # the official default filled in
    with pytest.raises(ParameterError, match="choose one of band, channel, multi"):
        load_pipeline("cubes", ["cube.output_type=mosaic"])
    with pytest.raises(ParameterError, match="has no step 'cubes'.*its steps: outlier, cube, export"):
        load_pipeline("cubes", ["cubes.weighting=emsm"])
    with pytest.raises(ParameterError, match="use ID.PARAM=VALUE"):
        load_pipeline("cubes", ["weighting=emsm"])


@pytest.mark.parametrize("steps, message", [
    ([{"step": "cubes"}], "unknown step 'cubes'; choose one of background, straylight, fringe, outlier, cube, export, extract"),
    ([{"step": "cube", "output_typ": "band"}], "unknown parameter 'output_typ'; did you mean 'output_type'"),
    ([{"step": "cube", "scalexy": "fine"}], "'scalexy' must be a number"),
    ([{"step": "cube", "channels": [5]}], "'5' is not one of 1, 2, 3, 4, all"),
    ([{"step": "fringe", "residual": "yes"}], "'residual' must be true or false"),
    ([{"step": "fringe", "ignore_regions": [[5.1, 5.0]]}], "not a \\[min, max\\] pair"),
    ([{"step": "export"}], "reads cubes, but no cube step comes before it"),
    ([{"step": "extract"}], "reads cubes, but no cube step comes before it"),
    ([{"step": "cube"}, {"step": "extract", "center_xy": [3]}], "'center_xy' must be two numbers"),
    ([{"step": "cube"}, {"step": "fringe"}], "comes after a cube step"),
    ([{"step": "cube"}, {"step": "outlier"}], "comes after a cube step"),
    ([{"step": "outlier", "threshold_percent": "high"}], "'threshold_percent' must be a number"),
    ([{"step": "cube"}, {"step": "cube", "output_type": "multi"}], "step id 'cube' is used twice"),
    ([{"step": "cube"}, {"step": "cube", "id": "multi", "output_type": "multi"}], "both write cubes.zarr"),
    ([{"step": "cube", "id": "My Cube"}], "must be lower-case letters"),
    ([{"step": "cube", "when": "sunny"}], "unknown condition 'sunny' in 'when'; choose from backgrounds_linked"),
    ([{"step": "cube", "when": [1]}], "'when' must be a condition or a list of conditions"),
    ([{"step": "cube", "skip": "yes"}], "'skip' must be true or false"),
    ([{"step": "outlier", "skip": "yes"}], "'skip' must be true or false"),
    ([], "'steps' must be a non-empty list"),
    (["cube"], "must be a mapping with a 'step' key"),
])
def test_mistakes_are_reported_with_the_step_and_what_is_accepted(steps, message):
    with pytest.raises(ParameterError, match=message):
        _parse(steps)


def test_skip_and_when_are_taken_by_every_step_and_can_be_set():
    pipeline = _parse([{"step": "background", "method": "master", "when": ["backgrounds_linked", "user_background"]},
                       {"step": "outlier"}, {"step": "cube", "when": "moving_target"}, {"step": "export"}],
                      ["cube.skip=true", "outlier.skip=true", "background.when=backgrounds_linked"])
    background, outlier, cube, export = pipeline.steps
    assert background.when == ("backgrounds_linked",) and not background.skip
    assert "skip" not in background.params and "when" not in background.params
    assert outlier.skip and outlier.params["skip"] is True  # the outlier step's own parameter, the same switch
    assert cube.skip and cube.when == ("moving_target",) and not export.skip and export.when == ()
    text = pipeline.describe()
    assert "when: backgrounds_linked\n" in text + "\n" and "skip: true" in text


def test_two_cube_steps_with_their_own_stores():
    pipeline = _parse([{"step": "cube"}, {"step": "cube", "id": "multi", "output_type": "multi", "store": "multi.zarr"},
                       {"step": "export"}])
    assert [s.output for s in pipeline.steps] == ["cubes.zarr", "multi.zarr", "s3d"]


def test_unknown_top_level_keys_and_missing_files(tmp_path):
    with pytest.raises(ParameterError, match="unknown key"):
        parse_pipeline({"name": "x", "stesp": []}, "x.yaml")
    with pytest.raises(InputError, match="no pipeline of that name.*known: .*cubes"):
        load_pipeline("cubez")
    with pytest.raises(InputError, match="no such pipeline file"):
        load_pipeline(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [\n")
    with pytest.raises(InputError, match="cannot read the pipeline definition"):
        load_pipeline(str(bad))
    mine = tmp_path / "mine.yaml"
    mine.write_text("steps:\n  - step: cube\n    weighting: emsm\n")
    assert load_pipeline(str(mine)).steps[0].params["weighting"] == "emsm"
    assert load_pipeline(str(mine)).name == "mine"


def test_named_pipelines_are_found_in_the_folders_of_mrsdask_pipelines(tmp_path, monkeypatch):
    folder = tmp_path / "site-pipelines"
    folder.mkdir()
    (folder / "nightly.yaml").write_text("description: site pipeline\nsteps:\n  - step: cube\n    output_type: multi\n")
    (folder / "cubes.yaml").write_text("steps:\n  - step: cube\n    weighting: msm\n")  # comes first: a site override
    monkeypatch.setenv("MRSDASK_PIPELINES", str(folder))
    assert load_pipeline("nightly").steps[0].params["output_type"] == "multi"
    assert load_pipeline("cubes").steps[0].params["weighting"] == "msm"
    assert "fringe-cubes" in shipped_pipelines()
