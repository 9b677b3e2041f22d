rule synth:
    output:
        root=directory("data/synthetic/{dataset}"),
    log:
        paths.job_log("synth", "{dataset}"),
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(synth_output, "cmd"),
        fingerprint=from_job(synth_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
