rule train:
    input:
        from_job(train_output, "deps"),
    output:
        scores="results/train/{dataset}/{protocol}/f{fold}/{method}/{variant}/s{seed}/scores.parquet",
        frame_scores="results/train/{dataset}/{protocol}/f{fold}/{method}/{variant}/s{seed}/frame_scores.parquet",
        history="results/train/{dataset}/{protocol}/f{fold}/{method}/{variant}/s{seed}/history.csv",
        receipt="results/train/{dataset}/{protocol}/f{fold}/{method}/{variant}/s{seed}/receipt.json",
    log:
        "logs/train/{dataset}.{protocol}.f{fold}.{method}.{variant}.s{seed}.log",
    conda:
        "../envs/fas.yaml"
    resources:
        gpu=TRAIN_GPUS,
    params:
        cmd=from_job(train_output, "cmd"),
        fingerprint=from_job(train_output, "fingerprint"),
    shell:
        "{params.cmd} > {log} 2>&1"
