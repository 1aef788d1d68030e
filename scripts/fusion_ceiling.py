#!/usr/bin/env python3
"""How far could any fusion of the keyword and semantic lists go? A study aid, not a test.

Reads the lists `qsearch eval --beir DIR --lists FILE` writes (each query's keyword hits as
[doc, BM25, every word, coverage] and semantic hits as [doc, cosine, ...]) and the set's qrels,
then prints nDCG@10 of each list alone, of the z-score sum qsearch uses (first 40 of each list,
keyword BM25 x coverage, semantic weight W), and of a logistic regression over per-candidate
features (semantic and keyword z-scores, coverage, in-both), trained and scored in 5 folds of
queries: a ceiling for fusions built from these signals.

    pip install scikit-learn numpy     # once, anywhere
    python3 scripts/fusion_ceiling.py LISTS.jsonl BEIR_DIR [W]
"""
import glob, json, math, random, sys

import numpy as np
from sklearn.linear_model import LogisticRegression

HEAD = 40


def ndcg(ranked, rel):
    dcg = sum((2 ** rel[d] - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in rel)
    ideal = sorted(rel.values(), reverse=True)[:10]
    idcg = sum((2 ** r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def z(xs):
    xs = np.asarray(xs, dtype=float)
    sd = xs.std() or 1.0
    return (xs - xs.mean()) / sd


def candidates(row):
    kw = {h[0]: h for h in row["keyword"][:HEAD]}
    sem = {h[0]: h[1] for h in row["semantic"][:HEAD]}
    ids = list(kw) + [d for d in sem if d not in kw]
    floor = min(sem.values()) if sem else 0.0
    kz = z([kw[d][1] * kw[d][3] if d in kw else 0.0 for d in ids])
    sz = z([sem.get(d, floor) for d in ids])
    cov = [kw[d][3] if d in kw else 0.0 for d in ids]
    both = [float(d in kw and d in sem) for d in ids]
    return ids, np.column_stack([sz, kz, cov, both])


def main():
    lists = [json.loads(l) for l in open(sys.argv[1])]
    weight = float(sys.argv[3]) if len(sys.argv) > 3 else 0.65
    qrels = {}
    for f in glob.glob(sys.argv[2] + "/qrels/*.tsv"):
        for line in open(f).read().splitlines()[1:]:
            q, d, s = line.split("\t")
            if int(s) > 0:
                qrels.setdefault(q, {})[d] = int(s)
    rows = [r for r in lists if r["id"] in qrels]
    mean = lambda xs: sum(xs) / len(xs)
    print("keyword ", round(mean([ndcg([h[0] for h in r["keyword"]], qrels[r["id"]]) for r in rows]), 4))
    print("semantic", round(mean([ndcg([h[0] for h in r["semantic"]], qrels[r["id"]]) for r in rows]), 4))
    per = [(r["id"],) + candidates(r) for r in rows]
    fused = []
    for q, ids, f in per:
        score = weight * f[:, 0] + (1 - weight) * f[:, 1]
        fused.append(ndcg([ids[i] for i in np.argsort(-score, kind="stable")], qrels[q]))
    print(f"z-score sum, semantic weight {weight}", round(mean(fused), 4))
    order = list(range(len(per)))
    random.Random(0).shuffle(order)
    scores = []
    for fold in range(5):
        test = set(order[fold::5])
        train = [per[i] for i in range(len(per)) if i not in test]
        x = np.vstack([f for _, _, f in train])
        y = np.concatenate([[1 if d in qrels[q] else 0 for d in ids] for q, ids, _ in train])
        model = LogisticRegression(max_iter=3000).fit(x, y)
        for i in test:
            q, ids, f = per[i]
            scores.append(ndcg([ids[j] for j in np.argsort(-model.decision_function(f))], qrels[q]))
    print("logistic regression, 5-fold (ceiling of these features)", round(mean(scores), 4))


if __name__ == "__main__":
    main()
