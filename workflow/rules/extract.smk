rule extract:
    input:
        from_job(extract_output, "deps"),
    output:
        frames=temp("data/frames/{dataset}/shard-{shard}.parquet"),
    log:
        "logs/extract/{dataset}.{shard}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(extract_output, "cmd"),
        fingerprint=from_job(extract_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
