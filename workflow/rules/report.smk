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
    benchmark:
        paths.job_benchmark("report")
    priority: priority_of(report_output)
    conda:
        "../envs/fas.yaml"
    threads: 2  # it runs alone at the end of the grid: plots in two processes (fas report --workers)
    params:
        cmd=from_job(report_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
