rule index:
    input:
        index_inputs,
    output:
        manifest="data/index/{dataset}/manifest.parquet",
        protocols="data/index/{dataset}/protocols.parquet",
        skipped="data/index/{dataset}/skipped.json",
    log:
        "logs/index/{dataset}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=command,
        fingerprint=fingerprint,
    shell:
        "{params.cmd} > {log} 2>&1"
