rule report:
    input:
        from_job(report_output, "deps"),
    output:
        tables=report(
            directory(paths.TABLES),
            patterns=["{table}.tex"],
            caption="../report/tables.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
        plots=report(
            directory(paths.PLOTS),
            # <experiment path>/roc.png, groups/<group>.roc.png, ...
            patterns=["{plot}.png"],
            caption="../report/plots.rst",
            category="Plots",
            labels={"plot": "{plot}"},
        ),
        index=report(
            paths.RESULTS_INDEX, caption="../report/results.rst", category="Results"
        ),
        summary=report(
            paths.SUMMARY_METRICS, caption="../report/results.rst", category="Results"
        ),
        built=touch(paths.built_stamp("report")),
    log:
        paths.job_log("report"),
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(report_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
