rule align:
    input:
        from_job(align_output, "deps"),
    output:
        static="data/cache/{dataset}/static-{shard}.parquet",
    log:
        "logs/align/{dataset}.{shard}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(align_output, "cmd"),
        fingerprint=from_job(align_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
