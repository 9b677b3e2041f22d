rule evaluate:
    input:
        from_job(evaluate_output, "deps"),
    output:
        metrics=paths.metrics_output(EXPERIMENT_PATTERN),
        built=touch(paths.built_stamp("evaluate", EXPERIMENT_PATTERN.id)),
    log:
        paths.job_log("evaluate", EXPERIMENT_PATTERN.id),
    benchmark:
        paths.job_benchmark("evaluate", EXPERIMENT_PATTERN.id)
    priority: priority_of(evaluate_output)
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(evaluate_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
