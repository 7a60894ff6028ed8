"""pipelines: everything that writes data at scale.

* ``python -m pipelines.build_shards``: dual-representation groups as WebDataset shards (Ray).
* ``python -m pipelines.verify_shards``: checksums, counts and an exact re-derivation of every image.
* ``python -m pipelines.pack_iqa``: an IQA dataset packed into shards, original bytes kept.
"""
from degrade._extras import check_datasets_package as _check, require as _require

_check()
_require("pipelines", "data", "ray", "webdataset")
