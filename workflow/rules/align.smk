rule align:
    input:
        align_inputs,
    output:
        static="data/cache/{dataset}/static-{shard}.parquet",
    log:
        "logs/align/{dataset}.{shard}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=command,
        fingerprint=fingerprint,
    shell:
        "{params.cmd} > {log} 2>&1"
