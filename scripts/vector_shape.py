#!/usr/bin/env python3
"""How hard a set of vectors is for a nearest-neighbour graph: the cosine of each sampled vector's
1st, 10th and 100th nearest neighbour, the mean cosine between random pairs, and the local
intrinsic dimension (Levina-Bickel MLE over the 20 nearest). Used to shape the benches' synthetic
vectors like real text embeddings (benches/README.md, "A million chunks again").

    python scripts/vector_shape.py INDEX_DIR/index.sqlite ...    # an index's stored vectors
    python scripts/vector_shape.py --synthetic 15000 1024         # the benches' `latent` data

Needs numpy (e.g. target/venv-fixtures/bin/python). Reads f32 and f16 (odd-length) vector rows.
"""
import sqlite3
import sys

import numpy as np


def load(db):
    rows = sqlite3.connect(db).execute("SELECT data FROM vectors").fetchall()
    vs = []
    for (blob,) in rows:
        if len(blob) % 2 == 1:
            vs.append(np.frombuffer(blob[:-1], dtype="<f2").astype(np.float32))
        else:
            vs.append(np.frombuffer(blob, dtype="<f4"))
    x = np.array(vs)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def latent(n, d, m=32, clusters=256, spread=0.8, noise=0.6, shared=0.3, seed=1):
    """The distribution of benches/common/vectors_only.rs `Data::Latent` (not its exact values)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((m, d)) / np.sqrt(d)
    centres = rng.standard_normal((clusters, m))
    z = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, m))
    x = z @ basis + noise * np.sqrt(m) / np.sqrt(d) * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    u = rng.standard_normal(d)
    x += shared * u / np.linalg.norm(u)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def shape(x, name, samples=200, k=20):
    rng = np.random.default_rng(0)
    picked = rng.choice(len(x), samples, replace=False)
    sims = x[picked] @ x.T
    sims[np.arange(samples), picked] = -9.0  # not its own neighbour
    sims = -np.sort(-sims, axis=1)
    dist = np.sqrt(np.maximum(2 - 2 * sims[:, :k], 1e-12))
    lid = -1 / np.mean(np.log(dist[:, : k - 1] / dist[:, k - 1 : k]), axis=1)
    mean = (x[picked] @ x[rng.choice(len(x), 2000)].T).mean()
    print(
        f"{name}: {len(x)} x {x.shape[1]}: neighbours 1st {sims[:, 0].mean():.3f} 10th {sims[:, 9].mean():.3f} "
        f"100th {sims[:, 99].mean():.3f}, mean cosine {mean:.3f}, intrinsic dimension {np.median(lid):.1f}"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--synthetic"]:
        n, d = int(sys.argv[2]), int(sys.argv[3])
        shape(latent(n, d), f"latent {n}x{d}")
    else:
        for db in sys.argv[1:]:
            shape(load(db), db)
