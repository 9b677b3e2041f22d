rule evaluate:
    input:
        evaluate_inputs,
    output:
        metrics="results/eval/{dataset}/{protocol}/f{fold}/{method}/{variant}/s{seed}/metrics.json",
    log:
        "logs/evaluate/{dataset}.{protocol}.f{fold}.{method}.{variant}.s{seed}.log",
    conda:
        "../envs/fas.yaml"
    params:
        cmd=command,
        fingerprint=fingerprint,
    shell:
        "{params.cmd} > {log} 2>&1"
