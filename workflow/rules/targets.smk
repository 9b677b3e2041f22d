# Named targets: one per dataset (`snakemake -j2 dataset_cefa`) and per method
# (`snakemake -j2 method_motion`); each builds the metrics of its experiments and the
# built stamps of every job they need (see stamps_up_to).

for _name, _experiments in [
    *((f"dataset_{d}", [e for e in EXPERIMENTS if e.dataset == d]) for d in DATASETS),
    *((f"method_{m}", [e for e in EXPERIMENTS if e.method == m]) for m in METHODS),
]:
    if not _experiments:
        continue

    rule:
        name:
            _name
        input:
            [paths.metrics_output(e) for e in _experiments],
            stamps_up_to(paths.metrics_output(e) for e in _experiments),
