rule index:
    input:
        from_job(index_output, "deps"),
    output:
        manifest=paths.index_outputs("{dataset}")[0],
        protocols=paths.index_outputs("{dataset}")[1],
        skipped=paths.index_outputs("{dataset}")[2],
        built=touch(paths.built_stamp("index", "{dataset}")),
    log:
        paths.job_log("index", "{dataset}"),
    benchmark:
        paths.job_benchmark("index", "{dataset}")
    priority: priority_of(index_output)
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(index_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
