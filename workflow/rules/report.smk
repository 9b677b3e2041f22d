rule report:
    input:
        from_job(report_output, "deps"),
    output:
        tables=directory("results/tables"),
        plots=directory("results/plots"),
        index="results/index.md",
    log:
        "logs/report.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(report_output, "cmd"),
        fingerprint=from_job(report_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
