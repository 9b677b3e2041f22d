rule dynamic:
    input:
        from_job(dynamic_output, "deps"),
    output:
        dynamic=paths.cache_shard("{dataset}", "dynamic", Shard.PATTERN),
    log:
        paths.job_log("dynamic", "{dataset}.{shard}"),
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(dynamic_output, "cmd"),
        fingerprint=from_job(dynamic_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
