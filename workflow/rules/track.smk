rule track_init:
    output:
        receipt=dag.MLFLOW_RECEIPT,
    log:
        "logs/track/init.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=command,
        fingerprint=fingerprint,
    shell:
        "{params.cmd} > {log} 2>&1"
