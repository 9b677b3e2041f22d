rule synth:
    output:
        root=directory("data/synthetic/{dataset}"),
    log:
        "logs/synth/{dataset}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=command,
        fingerprint=fingerprint,
    shell:
        "{params.cmd} > {log} 2>&1"
