"""The names of the crop policies for scoring (``dri.predict --crop``, ``predict_images(crop=...)``),
kept free of torch so that command lines list them without loading it; :mod:`dri.inference` says
what each one does."""

CROPS = ("grid", "five", "resize")  # the first is the default
