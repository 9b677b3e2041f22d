rule synth:
    output:
        root=directory("data/synthetic/{dataset}"),
        built=touch(paths.built_stamp("synth", "{dataset}")),
    log:
        paths.job_log("synth", "{dataset}"),
    benchmark:
        paths.job_benchmark("synth", "{dataset}")
    priority: priority_of(synth_output)
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(synth_output, "cmd"),
    shell:
        "{params.cmd} > {log} 2>&1"
