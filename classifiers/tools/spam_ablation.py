#!/usr/bin/python3
"""spam_ablation.py - which ingredient of the reference spam classifier matters.

Starts from the reference of spam_reference.py (word 1-2-grams and character 3-5-grams within
words of the raw text, TF-IDF with sublinear TF, rows scaled to unit L2 norm, a linear SVM or
logistic regression) and changes one thing at a time towards what the product's model
computes (lowercase text, hashed buckets, texts cut at 8 KB, no IDF, raw counts, and the
pooling: L2 norm, 1/sqrt(number of features), or the mean). Validation split only: F1 at the
decision point, best F1 over cuts and AUPRC of the best of three settings per variant. Same
rows and data as spam_reference.py; nothing is written. About 15 minutes of one core:

    OPENBLAS_NUM_THREADS=1 nice classifiers/tools/spam_ablation.py
"""
import os
import sys
import zlib

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.svm import LinearSVC

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spam_reference import best_cut, clip, load_splits, prf  # noqa: E402


def counts(train, others, lower):
    """Count matrices of word 1-2-grams and char 3-5-grams (within words), vocabulary of train."""
    w = CountVectorizer(ngram_range=(1, 2), min_df=2, lowercase=lower,
                        token_pattern=r"(?u)\b\w+\b|[^\w\s]", dtype=np.float32)
    c = CountVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, lowercase=lower,
                        dtype=np.float32)
    a = sp.hstack([w.fit_transform(train), c.fit_transform(train)]).tocsr()
    vocab = [("w", t) for t in w.get_feature_names_out()] + \
            [("c", t) for t in c.get_feature_names_out()]
    rest = [sp.hstack([w.transform(o), c.transform(o)]).tocsr() for o in others]
    return a, rest, vocab


def hashed(mats, vocab, buckets):
    """Columns folded into buckets (a fixed hash of each n-gram), as feature hashing does."""
    cols = np.array([zlib.crc32((k + t).encode("utf-8")) % buckets for k, t in vocab])
    fold = sp.csr_matrix((np.ones(len(cols), np.float32), (np.arange(len(cols)), cols)),
                         shape=(len(cols), buckets))
    return [(m @ fold).tocsr() for m in mats]


def weigh(m, idf, sublinear, pooling):
    """Term weights (counts or 1 + log count, times IDF) pooled per row: unit L2 norm, divided
    by the square root of the row's sum, or by the sum (the mean)."""
    m = m.copy()
    if sublinear:
        m.data = 1 + np.log(m.data)
    n = np.asarray(m.sum(axis=1)).ravel()  # features of the text (after the TF transform)
    if idf is not None:
        m = m @ sp.diags(idf)
    if pooling == "l2":
        norm = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    elif pooling == "sqrt":
        norm = np.sqrt(n)
    else:
        norm = n
    norm[norm == 0] = 1
    return sp.diags(1 / norm) @ m


def evaluate(name, a, b, yt, yv):
    # One constant for both splits brings the mean row norm of the training rows to 1, so that
    # one grid of C fits every pooling (the mean makes rows of long texts tiny).
    k = 1 / np.mean(np.sqrt(np.asarray(a.multiply(a).sum(axis=1)).ravel()))
    a, b = a * k, b * k
    best = None
    for cls, cs in (("svm", [1, 10]), ("lr", [100])):
        for c in cs:
            clf = (LinearSVC(C=c, max_iter=50000) if cls == "svm"
                   else LogisticRegression(C=c, solver="liblinear", max_iter=2000)).fit(a, yt)
            s = clf.decision_function(b)
            f = prf(yv, s > 0)[2]
            if best is None or f > best[0]:
                best = (f, best_cut(yv, s)[1], average_precision_score(yv, s), cls, c)
    f, fb, ap, cls, c = best
    print(f"| {name} | {f:.3f} | {fb:.3f} | {ap:.3f} | {cls} C={c} |", flush=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    s = load_splits(os.path.join(here, "..", "recipe.json"), None, head_lines=False)  # as measured
    (xt, yt), (xv, yv) = s["train"], s["val"]
    print("| variant (validation) | F1 | best F1 | AUPRC | model |")
    print("|---|---|---|---|---|", flush=True)
    # Raw case, whole texts: the reference; then lowercase; then lowercase, 8 KB, hashed.
    for lower, mb in ((False, 0), (True, 8192)):
        a, (b,), vocab = counts(clip(xt, mb), [clip(xv, mb)], lower)
        tag = ("lowercase" if lower else "raw case") + (", 8 KB" if mb else "")
        evaluate(f"{tag}: TF-IDF, sublinear TF, L2", weigh(a, idf_of(a), True, "l2"),
                 weigh(b, idf_of(a), True, "l2"), yt, yv)
        if not lower:
            continue
        a, b = hashed([a, b], vocab, 131072)
        tag += ", 131,072 buckets"
        evaluate(f"{tag}: TF-IDF, sublinear TF, L2", weigh(a, idf_of(a), True, "l2"),
                 weigh(b, idf_of(a), True, "l2"), yt, yv)
        evaluate(f"{tag}: no IDF, sublinear TF, L2", weigh(a, None, True, "l2"),
                 weigh(b, None, True, "l2"), yt, yv)
        evaluate(f"{tag}: counts, L2", weigh(a, None, False, "l2"),
                 weigh(b, None, False, "l2"), yt, yv)
        evaluate(f"{tag}: counts / sqrt(n)", weigh(a, None, False, "sqrt"),
                 weigh(b, None, False, "sqrt"), yt, yv)
        evaluate(f"{tag}: counts / n (mean)", weigh(a, None, False, "mean"),
                 weigh(b, None, False, "mean"), yt, yv)


def idf_of(a):
    df = np.bincount(a.indices, minlength=a.shape[1])
    return (np.log((1 + a.shape[0]) / (1 + df)) + 1).astype(np.float32)


if __name__ == "__main__":
    main()
