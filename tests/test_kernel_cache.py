"""numba's cache of mrsdask's kernels lives in a folder named by the kernels' sources."""

import os
import subprocess
import sys
import textwrap

from mrsdask.kernel_cache import kernel_sources_digest


def test_the_digest_follows_every_module_that_imports_numba_and_only_those(tmp_path):
    package = tmp_path / "pkg"
    (package / "kernels").mkdir(parents=True)
    (package / "kernels" / "caller.py").write_text("import numba\nfrom pkg.callee import f\n")
    (package / "callee.py").write_text("from numba import njit\n\n@njit\ndef f(x):\n    return x + 1\n")
    (package / "plain.py").write_text('"""Not a numba module (it only says numba)."""\nVALUE = 1\n')
    first = kernel_sources_digest(package)
    (package / "plain.py").write_text('"""Not a numba module (it only says numba)."""\nVALUE = 2\n')
    assert kernel_sources_digest(package) == first  # imports no numba: not part of it
    (package / "callee.py").write_text("import numba\n\n@numba.njit\ndef f(x):\n    return x + 2\n")
    assert kernel_sources_digest(package) != first  # the callee alone changed


def _run(code: str, env: dict) -> list[str]:
    """Run ``code`` in a fresh process with ``env`` over this one's, less an inherited
    ``NUMBA_CACHE_DIR`` (this process's mrsdask set one); its printed words."""
    inherited = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env={**inherited, **env}, check=True)
    return out.stdout.split()


def test_kernels_cache_in_the_digest_folder_of_the_mrsdask_cache_and_a_given_folder_is_kept(tmp_path):
    """In a fresh process (numba reads its settings once): numba imported before or after
    mrsdask, the kernels' cache folder is ``$MRSDASK_CACHE/numba/<digest>``; a
    ``NUMBA_CACHE_DIR`` someone set wins."""
    code = """
        import {first}, {second}
        import numba.core.config as config
        from mrsdask.kernel_cache import kernel_sources_digest
        from mrsdask.io.fits_data import _swap_words
        print(config.CACHE_DIR, kernel_sources_digest(), _swap_words._cache._cache_path)
    """
    env = {"MRSDASK_CACHE": str(tmp_path / "cache")}
    for first, second in (("mrsdask", "numba"), ("numba", "mrsdask")):
        folder, digest, kernel_path = _run(code.format(first=first, second=second), env)
        assert folder == str(tmp_path / "cache" / "numba" / digest)
        assert kernel_path.startswith(folder + os.sep)
    given = str(tmp_path / "mine")
    folder, _, kernel_path = _run(code.format(first="mrsdask", second="numba"),
                                  {**env, "NUMBA_CACHE_DIR": given})
    assert folder == given and kernel_path.startswith(given + os.sep)
    # A folder that mrsdask set in a parent process (another checkout's digest) is replaced.
    foreign = str(tmp_path / "cache" / "numba" / "0123456789abcdef")
    folder, digest, kernel_path = _run(code.format(first="mrsdask", second="numba"),
                                       {**env, "NUMBA_CACHE_DIR": foreign, "MRSDASK_NUMBA_CACHE_DIR": foreign})
    assert folder == str(tmp_path / "cache" / "numba" / digest) != foreign
    assert kernel_path.startswith(folder + os.sep)


def test_folders_of_other_digests_are_pruned_when_old_and_beyond_the_kept_number(tmp_path):
    import time

    from mrsdask import kernel_cache

    root = tmp_path / "numba"
    now = time.time()
    ages = {"current": None, "new1": 10, "new2": 20, "old1": 2 * 86400, "old2": 3 * 86400, "old3": 4 * 86400}
    for name, age in ages.items():
        (root / name).mkdir(parents=True)
        if age is not None:
            os.utime(root / name, (now - age, now - age))
    kernel_cache._remove_old_folders(root / "current")
    # KEEP_FOLDERS = 4: the current one and the 3 most recently used others stay, whatever their age.
    assert sorted(p.name for p in root.iterdir()) == ["current", "new1", "new2", "old1"]
    os.utime(root / "old1", (now - 5 * 86400, now - 5 * 86400))
    (root / "new3").mkdir()
    kernel_cache._remove_old_folders(root / "current")
    assert sorted(p.name for p in root.iterdir()) == ["current", "new1", "new2", "new3"]
