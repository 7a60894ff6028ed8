"""datasets: everything that reads data.

* ``datasets.sources``: folders of pristine images and the built-in photos, with crop sampling.
* ``datasets.iqa``: the standard IQA datasets in their native layouts, as one record type.
"""
