rule track_init:
    output:
        receipt=paths.MLFLOW_RECEIPT,
    log:
        paths.job_log("track", "init"),
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(track_output, "cmd"),
        fingerprint=from_job(track_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
