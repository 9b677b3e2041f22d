rule align:
    input:
        from_job(align_output, "deps"),
    output:
        static=paths.cache_shard("{dataset}", "static", Shard.PATTERN),
        built=touch(paths.built_stamp("align", "{dataset}.{shard}")),
    log:
        paths.job_log("align", "{dataset}.{shard}"),
    benchmark:
        paths.job_benchmark("align", "{dataset}.{shard}")
    priority: priority_of(align_output)
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(align_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
