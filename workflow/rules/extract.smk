rule extract:
    input:
        from_job(extract_output, "deps"),
    output:
        frames=temp(paths.frames_shard("{dataset}", Shard.PATTERN)),
    log:
        paths.job_log("extract", "{dataset}.{shard}"),
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(extract_output, "cmd"),
        fingerprint=from_job(extract_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
