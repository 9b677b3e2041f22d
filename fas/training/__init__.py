"""Training one experiment, in the order a batch travels.

- `splits`: the experiment's train/dev/test videos and the modality feeds.
- `samples`: the loader datasets of a split (one or several source caches).
- `inputs`: a loader batch -> model inputs (resize, magnify, augment, normalise).
- `methods`: the per-method table (samples, inputs, model, normalisation).
- `loop`: seeding, the optimiser schedule, epochs, dev-set model selection, checkpoints.

`fas.train` runs one experiment end to end with these and writes its outputs.
"""
