"""Open an in-memory ASDF document as a plain dict, quietly and without schema validation."""

from __future__ import annotations

import io
import warnings


def open_tree(document: bytes, skip_extensions: tuple[str, ...] = ()) -> dict:
    """The tree of an ASDF document held in bytes (arrays loaded, file closed).

    Parameters
    ----------
    document : bytes
        A complete ASDF file.
    skip_extensions : tuple of str
        Prefixes of extension URIs whose converters are left out: their tags stay tagged dicts.
    """
    import asdf
    import stdatamodels.jwst.datamodels  # noqa: F401  (registers the jwst ASDF extensions)

    with warnings.catch_warnings(), asdf.config_context() as config:
        warnings.simplefilter("ignore")  # skipped tags are reported as unknown
        config.validate_on_read = False
        if skip_extensions:
            for extension in list(config.extensions):
                if (extension.extension_uri or "").startswith(skip_extensions):
                    config.remove_extension(extension)
        with asdf.open(io.BytesIO(document), lazy_load=False, memmap=False) as af:
            return dict(af.tree)
