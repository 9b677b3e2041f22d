rule magnify:
    input:
        from_job(magnify_output, "deps"),
    output:
        magnified=paths.cache_shard("{dataset}", "magnified", Shard.PATTERN),
        built=touch(paths.built_stamp("magnify", "{dataset}.{shard}")),
    log:
        paths.job_log("magnify", "{dataset}.{shard}"),
    benchmark:
        paths.job_benchmark("magnify", "{dataset}.{shard}")
    priority: priority_of(magnify_output)
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(magnify_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
