rule evaluate:
    input:
        from_job(evaluate_output, "deps"),
    output:
        metrics="results/eval/{dataset}/{protocol}/f{fold}/{method}/{variant}/s{seed}/metrics.json",
    log:
        "logs/evaluate/{dataset}.{protocol}.f{fold}.{method}.{variant}.s{seed}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=from_job(evaluate_output, "cmd"),
        fingerprint=from_job(evaluate_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
