rule dynamic:
    input:
        from_job(dynamic_output, "deps"),
    output:
        dynamic=paths.cache_shard("{dataset}", "dynamic", Shard.PATTERN),
        built=touch(paths.built_stamp("dynamic", "{dataset}.{shard}")),
    log:
        paths.job_log("dynamic", "{dataset}.{shard}"),
    benchmark:
        paths.job_benchmark("dynamic", "{dataset}.{shard}")
    priority: priority_of(dynamic_output)
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(dynamic_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
