rule dynamic:
    input:
        dynamic_inputs,
    output:
        dynamic="data/cache/{dataset}/dynamic-{shard}.parquet",
    log:
        "logs/dynamic/{dataset}.{shard}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=command,
        fingerprint=fingerprint,
    shell:
        "{params.cmd} > {log} 2>&1"
