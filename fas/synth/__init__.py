"""Synthetic replicas of the seven benchmark datasets in their real on-disk layouts.

`fas synth DATASET --out DIR --scale {tiny,demo,full} --seed N [--difficulty X] [--layout-only]`.
One mechanism (`generate.py`) renders every item a dataset module lists; the
modules (`cefa.py`, `surf.py`, `oulu.py`, `siw.py`, `replay.py`, `msu.py`,
`casia_fasd.py`) hold only layout facts. `faces.py` builds identities from real
face photographs shipped by scikit-image, `render.py` the live scene, the attack
media (sheets, screens, masks) and the colour / depth / IR cameras, `media.py`
the ffmpeg and JPEG writers. The CeFA challenge release goes under
`<cefa root>/challenge/` (see `cefa.py`).
"""

GENERATOR_VERSION = "1.5"
DATASETS = ("cefa", "surf", "oulu", "siw", "replay", "msu", "casia_fasd")
