rule track_init:
    output:
        receipt=dag.MLFLOW_RECEIPT,
    log:
        "logs/track/init.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(track_output, "cmd"),
        fingerprint=from_job(track_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
