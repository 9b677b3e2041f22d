rule dynamic:
    input:
        from_job(dynamic_output, "deps"),
    output:
        dynamic="data/cache/{dataset}/dynamic-{shard}.parquet",
    log:
        "logs/dynamic/{dataset}.{shard}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(dynamic_output, "cmd"),
        fingerprint=from_job(dynamic_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
