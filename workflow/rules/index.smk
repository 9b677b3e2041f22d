rule index:
    input:
        from_job(index_output, "deps"),
    output:
        manifest="data/index/{dataset}/manifest.parquet",
        protocols="data/index/{dataset}/protocols.parquet",
        skipped="data/index/{dataset}/skipped.json",
    log:
        "logs/index/{dataset}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(index_output, "cmd"),
        fingerprint=from_job(index_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
