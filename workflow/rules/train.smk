rule train:
    input:
        from_job(train_output, "deps"),
    output:
        scores=paths.train_outputs(EXPERIMENT_PATTERN)[0],
        frame_scores=paths.train_outputs(EXPERIMENT_PATTERN)[1],
        history=paths.train_outputs(EXPERIMENT_PATTERN)[2],
        receipt=paths.train_outputs(EXPERIMENT_PATTERN)[3],
        built=touch(paths.built_stamp("train", EXPERIMENT_PATTERN.id)),
    log:
        paths.job_log("train", EXPERIMENT_PATTERN.id),
    benchmark:
        paths.job_benchmark("train", EXPERIMENT_PATTERN.id)
    priority: priority_of(train_output)
    conda:
        "../envs/fas.yaml"
    resources:
        gpu=TRAIN_GPUS,
    params:
        cmd=from_job(train_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
