rule track_init:
    output:
        receipt=paths.MLFLOW_RECEIPT,
        built=touch(paths.built_stamp("track")),
    log:
        paths.job_log("track", "init"),
    benchmark:
        paths.job_benchmark("track")
    priority: priority_of(track_output)
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(track_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
