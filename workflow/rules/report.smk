rule report:
    input:
        job(dag.REPORT_OUTPUTS[0]).deps,
    output:
        tables=directory("results/tables"),
        plots=directory("results/plots"),
        index="results/index.md",
    log:
        "logs/report.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=command,
        fingerprint=fingerprint,
    shell:
        "{params.cmd} > {log} 2>&1"
