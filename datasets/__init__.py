"""datasets: everything that reads data.

* ``datasets.sources``: folders of pristine images, the built-in photos and procedural content.
* ``datasets.iqa``: the standard IQA datasets in their native layouts, as one record type.
* ``datasets.labelled``: labelled data for training and evaluation, one contract for every kind.
* ``datasets.shards``: streaming loaders over the toolkit's shards.

This package's name is the one the project was laid out with; it collides with Hugging Face's
``datasets`` when both are installed in one environment (use a separate virtual environment).
"""
import importlib.metadata as _metadata
import warnings as _warnings

try:
    _other = _metadata.distribution("datasets")
except _metadata.PackageNotFoundError:
    _other = None
if _other is not None:
    _warnings.warn(
        f"Hugging Face's 'datasets' {_other.version} is installed in this environment too; it and this toolkit's "
        "'datasets' package share one name, and whichever comes first on sys.path hides the other. Install "
        "dri-toolkit in its own virtual environment.", RuntimeWarning, stacklevel=2)
