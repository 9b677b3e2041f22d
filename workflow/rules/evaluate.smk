rule evaluate:
    input:
        from_job(evaluate_output, "deps"),
    output:
        metrics=paths.metrics_output(EXPERIMENT_PATTERN),
    log:
        paths.job_log("evaluate", EXPERIMENT_PATTERN.id),
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(evaluate_output, "cmd"),
        fingerprint=from_job(evaluate_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
