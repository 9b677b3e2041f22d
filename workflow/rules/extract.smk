rule extract:
    input:
        extract_inputs,
    output:
        frames=temp("data/frames/{dataset}/shard-{shard}.parquet"),
    log:
        "logs/extract/{dataset}.{shard}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=command,
        fingerprint=fingerprint,
    shell:
        "{params.cmd} > {log} 2>&1"
