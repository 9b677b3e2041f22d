rule report:
    input:
        from_job(report_output, "deps"),
    output:
        tables=directory(paths.TABLES),
        plots=directory(paths.PLOTS),
        index=paths.RESULTS_INDEX,
        summary=paths.SUMMARY_METRICS,
        built=touch(paths.built_stamp("report")),
    log:
        paths.job_log("report"),
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(report_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
