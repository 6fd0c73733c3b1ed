"""Output safety (mrsdask/io/outputs.py and its users): every command that writes checks its
outputs before any work, writes files under a temporary name, and reports OS refusals to
write (read-only, disk full) as one line naming the path, with exit status 2.

The faults are real: read-only and full file systems are tmpfs mounts (the tests run as root,
for whom ``chmod`` stops nothing, while a read-only mount does); the tests are skipped, saying
why, where ``mount`` is not allowed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

import pytest

from mrsdask.cli import main


@contextlib.contextmanager
def _tmpfs(path, options):
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}), so the fault cannot be produced")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def read_only(tmp_path):
    """An empty read-only file system (EROFS for root too)."""
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as path:
        yield path


@pytest.fixture
def full_disk(tmp_path):
    """A file system of 256 KiB (ENOSPC once full)."""
    with _tmpfs(tmp_path / "full", "size=256k") as path:
        yield path


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrsdask: error: ") and "Traceback" not in err, err
    return lines[0]


def _cli(args, capsys) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, (_error_line(capsys) if code else "")


# --------------------------------------------------------------------------- read-only outputs
@pytest.mark.parametrize("command", ["ingest", "cube", "simulate", "run", "export", "extract", "cube --s3d",
                                     "outlier"])
def test_a_read_only_output_is_refused_before_any_work(command, read_only, sim_1a, cube_1a, capsys):
    store, _ = cube_1a
    asn = sim_1a.association
    target = read_only / "out"
    args = {
        "ingest": ["ingest", asn, "-o", target],
        "cube": ["cube", asn, "-o", target, "--scheduler", "threads", "--no-progress"],
        "cube --s3d": ["cube", asn, "-o", read_only.parent / "cubes.zarr", "--s3d", target, "--scheduler", "threads"],
        "simulate": ["simulate", "-o", target, "--bands", "1A", "--dithers", "1"],
        "run": ["run", "cubes", asn, "-o", target, "--scheduler", "threads", "--no-progress"],
        "export": ["export", store, "--s3d", target],
        "extract": ["extract", store, "--x1d", target],
        "outlier": ["outlier", asn, "-o", target, "--scheduler", "threads", "--no-progress"],
    }[command]
    code, line = _cli(args, capsys)
    assert code == 2
    assert str(target) in line and "read-only" in line, line
    assert not (read_only.parent / "cubes.zarr").exists()  # cube --s3d: refused before the build


def test_a_write_refused_while_writing_is_one_error_naming_the_file(read_only, cube_1a):
    """The translation itself (past the checks): write_s3d straight into a read-only mount."""
    from mrsdask.cube.builder import open_cube
    from mrsdask.cube.export import write_s3d
    from mrsdask.errors import OutputError

    store, name = cube_1a
    path = str(read_only / "x_s3d.fits")
    with pytest.raises(OutputError, match="read-only") as info:
        write_s3d(open_cube(store, name), path)
    assert path in str(info.value)


# --------------------------------------------------------------------------- a full disk
def test_a_full_disk_during_export_leaves_no_file_that_looks_complete(full_disk, cube_1a, capsys):
    store, name = cube_1a
    code, line = _cli(["export", store, "--s3d", full_disk / "s3d"], capsys)
    assert code == 2
    assert "No space left on device" in line and str(full_disk / "s3d") in line, line
    assert os.listdir(full_disk / "s3d") == []  # neither the file nor its .part


def test_a_full_disk_during_a_cube_build_leaves_the_store_incomplete(full_disk, sim_1a, capsys):
    from mrsdask.cube.store import COMPLETE_ATTR, open_group

    store = full_disk / "cubes.zarr"
    code, line = _cli(["cube", sim_1a.association, "-o", store, "--channel", "1", "--scheduler", "threads",
                       "--no-progress"], capsys)
    assert code == 2
    assert "No space left on device" in line and str(store) in line and "run the same command again" in line, line
    group = open_group(str(store))
    assert not any(group[k].attrs.get(COMPLETE_ATTR) for k in group.group_keys() if not k.startswith("_"))


# --------------------------------------------------------------------------- files where folders go
@pytest.mark.parametrize("option", ["--x1d", "--s3d", "simulate"])
def test_an_existing_file_where_an_output_folder_goes_is_refused(option, tmp_path, cube_1a, capsys):
    store, _ = cube_1a
    taken = tmp_path / "taken"
    taken.write_text("a user's file\n")
    args = {"--x1d": ["extract", store, "--x1d", taken], "--s3d": ["export", store, "--s3d", taken],
            "simulate": ["simulate", "-o", taken, "--bands", "1A", "--dithers", "1"]}[option]
    code, line = _cli(args, capsys)
    assert code == 2 and str(taken) in line and "a file is already there" in line, line
    assert taken.read_text() == "a user's file\n"


def test_files_mrsdask_did_not_write_are_replaced_only_with_overwrite(tmp_path, cube_1a, capsys):
    store, name = cube_1a
    folder = tmp_path / "s3d"
    assert main(["export", str(store), "--s3d", str(folder), "--prefix", "p"]) == 0
    ours = folder / f"p_{name}_s3d.fits"
    assert main(["export", str(store), "--s3d", str(folder), "--prefix", "p"]) == 0  # its own file: replaced
    capsys.readouterr()
    ours.write_bytes(b"a user's bytes")
    code, line = _cli(["export", store, "--s3d", folder, "--prefix", "p"], capsys)
    assert code == 2 and str(ours) in line and "--overwrite" in line, line
    assert ours.read_bytes() == b"a user's bytes"
    assert main(["export", str(store), "--s3d", str(folder), "--prefix", "p", "--overwrite"]) == 0
    assert ours.stat().st_size > 100_000 and not (folder / f"{ours.name}.part").exists()


# --------------------------------------------------------------------------- damaged input stores
@pytest.mark.parametrize("damaged", ["zarr.json", "{name}/zarr.json", "{name}/sci/zarr.json"])
@pytest.mark.parametrize("command", ["info", "export", "extract"])
def test_damaged_store_metadata_is_one_line_naming_the_file(damaged, command, tmp_path, cube_1a, capsys):
    store, name = cube_1a
    copy = tmp_path / "copy.zarr"
    shutil.copytree(store, copy)
    bad = copy / damaged.format(name=name)
    bad.write_text("")  # what a crash in mid-write leaves
    args = {"info": ["info", copy], "export": ["export", copy, "--s3d", tmp_path / "s3d"],
            "extract": ["extract", copy, "--x1d", tmp_path / "x1d"]}[command]
    code, line = _cli(args, capsys)
    assert code == 2 and str(bad) in line and "damaged store metadata" in line, line


def test_a_damaged_detector_store_is_named(tmp_path, capsys):
    from mrsdask.errors import InputError
    from mrsdask.io.detector_store import open_detector_store

    store = tmp_path / "det.zarr"
    store.mkdir()
    (store / "zarr.json").write_text('{"zarr_format": 3, "node_type": "gr')
    with pytest.raises(InputError, match=f"{store}/zarr.json: damaged store metadata"):
        open_detector_store(str(store))


# --------------------------------------------------------------------------- simulate
def test_simulate_never_replaces_a_file_it_did_not_write(tmp_path, capsys):
    folder = tmp_path / "sim"
    folder.mkdir()
    users = folder / "mrssim_12A_p1_d1_cal.fits"
    users.write_text("my own data\n")
    code, line = _cli(["simulate", "-o", folder, "--bands", "1A", "--dithers", "1"], capsys)
    assert code == 2 and str(users) in line and "mrsdask-simulate.json" in line, line
    assert users.read_text() == "my own data\n"
    assert sorted(os.listdir(folder)) == [users.name]  # refused before writing anything


def test_simulate_recognises_its_own_earlier_files(sim_1a, tmp_path):
    from mrsdask.errors import OutputError
    from mrsdask.sim import record

    source = os.path.dirname(str(sim_1a.association))
    folder = tmp_path / "again"
    shutil.copytree(source, folder)  # copy2: sizes and modification times kept
    names = [p.name for p in sim_1a.all_files] + [sim_1a.association.name, sim_1a.truth.name, sim_1a.scene.name]
    assert set(record.check_clashes(folder, names)) == set(names)  # all its own: may be replaced
    (folder / sim_1a.truth.name).write_bytes(b"edited since")
    with pytest.raises(OutputError, match=sim_1a.truth.name):
        record.check_clashes(folder, names)


def test_a_file_set_aside_is_replaced_by_the_staged_one_or_goes_with_a_failed_write(tmp_path):
    """:func:`mrsdask.io.outputs.set_aside`: the old file leaves its name at once (removed while
    the command works); the new one appears only complete; a failed write leaves neither."""
    from mrsdask.io import outputs

    path = tmp_path / "x_s3d.fits"
    path.write_bytes(b"old")
    with outputs.staged_file(str(path)) as tmp:
        aside = outputs.set_aside(str(path), tmp)
        assert not path.exists() and open(aside, "rb").read() == b"old"
        outputs.remove_quietly(aside)
        outputs.remove_quietly(aside)  # already gone: nothing to do
        with open(tmp, "wb") as fobj:
            fobj.write(b"new")
    assert path.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == [path.name]
    with pytest.raises(RuntimeError), outputs.staged_file(str(path)) as tmp:
        assert outputs.set_aside(str(path), tmp) is not None
        raise RuntimeError("the build failed")
    assert os.listdir(tmp_path) == []
    assert outputs.set_aside(str(path), str(tmp_path / "y")) is None  # no file to set aside
