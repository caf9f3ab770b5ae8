#!/usr/bin/python3
"""spam_reference.py - reference spam classifiers on exactly the recipe's splits.

Trains standard strong linear text classifiers (TF-IDF word 1-2-grams and character 3-5-grams
with logistic regression or a linear SVM, multinomial naive Bayes) on the training rows of the
two spam corpora of classifiers/recipe.json, picks each method's settings on the validation
rows only, and reports the spam F1 of the chosen setting on the test rows once. It tells how far
these texts can be taken by a classifier of n-gram features, as a yardstick for the product's
model (docs/classifiers.md, "Reference classifiers").

The rows are those `gardefou train` uses: the script reads the recipe (seed, split fractions,
text fields, label rules of the spam sources) and the data under ../shared/data (or --data-dir),
and repeats the recipe's deduplication and split rule (classifiers/clf_recipe.c). With --check
VAL.jsonl TEST.jsonl (written by `gardefou train --val-out/--test-out`) it first verifies that
its validation and test rows are exactly those. Nothing is written into the repository.

With --more it also trains two methods beyond the plain linear ones: NB-SVM (a linear SVM over
binary features scaled by their naive Bayes log-count ratios, Wang and Manning 2012) and a
neural network with one hidden layer over the TF-IDF features. Each test F1 comes with its 95%
bootstrap interval; --scores FILE (`gardefou eval --scores-out` of the test split) adds the
product's row the same way.

Needs scikit-learn (Debian: apt-get install python3-sklearn). One core, about 10 minutes
(about 20 more with --more):
    OPENBLAS_NUM_THREADS=1 nice classifiers/tools/spam_reference.py [--quick] [--more] [--scores F]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_fscore_support
from sklearn.naive_bayes import MultinomialNB
from sklearn.neural_network import MLPClassifier
from sklearn.svm import LinearSVC

M64 = (1 << 64) - 1
SPAM_SOURCES = ("sms-spam-collection", "spamassassin")


# What the grid of each method varies, as the log and the table name it.
SETTING = {"logistic regression": "C", "linear SVM": "C x 10", "multinomial naive Bayes":
           "alpha x 100", "NB-SVM": "C x 10", "one hidden layer (MLP)": "hidden width"}


def mix(x):
    """clf_recipe.c mix(): the murmur3 finalizer on 64 bits."""
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M64
    x ^= x >> 33
    return x


def text_key(b):
    """clf_recipe.c text_key(): FNV-1a over ASCII-case-folded, whitespace-collapsed bytes."""
    h = 0xCBF29CE484222325
    space = True
    for c in b:
        if c in (32, 9, 10, 13):
            space = True
            continue
        if space and h != 0xCBF29CE484222325:
            h = ((h ^ 32) * 0x100000001B3) & M64
        space = False
        if 65 <= c <= 90:
            c += 32
        h = ((h ^ c) * 0x100000001B3) & M64
    return h


def matches(cond, obj):
    """Whether every field of an "if" has the value (or one of the values) it names."""
    for k, want in cond.items():
        have = obj.get(k)
        wants = want if isinstance(want, list) else [want]
        if not isinstance(have, str) or have not in wants:
            return False
    return True


def rule_label(rules, obj):
    """The spam label (1, 0) the first matching rule gives, or None (skipped / no rule)."""
    for rule in rules:
        if not matches(rule.get("if", {}), obj):
            continue
        if rule.get("skip"):
            return None
        return 1 if "spam" in rule.get("pos", []) else 0
    return None


def row_text(fields, obj):
    """The recipe's text of a row: the fields joined by newlines, as C strings (cut at NUL)."""
    parts = []
    for f in fields or ["text"]:
        t = obj.get(f)
        if isinstance(t, str) and t:
            t = t.split("\0", 1)[0]
            if t:
                parts.append(t)
    return "\n".join(parts) if parts else None


def load_splits(recipe_path, data_dir, head_lines=True):
    """{'train'|'val'|'test': (texts, labels)} of the recipe's spam sources; the texts start
    with the source's "head_lines" (which the spam head reads) unless head_lines is false."""
    with open(recipe_path, encoding="utf-8") as f:
        recipe = json.load(f)
    if data_dir is None:
        data_dir = os.path.join(os.path.dirname(os.path.abspath(recipe_path)), recipe["data_dir"])
    seed = recipe["seed"]
    test_frac, val_frac = recipe["split"]["test"], recipe["split"]["val"]
    salt = mix((seed + 0x9E3779B97F4A7C15) & M64)
    seen = set()
    out = {"train": ([], []), "val": ([], []), "test": ([], [])}
    for src in recipe["sources"]:
        if not src.get("ship", False):
            continue
        # Deduplication runs over every source in recipe order; the spam corpora come first,
        # so their rows depend on nothing after them. Stop at the first other source.
        if src["name"] not in SPAM_SOURCES:
            break
        if src.get("keep", 1.0) < 1.0 or src.get("group"):
            sys.exit("spam_reference.py: keep/group on a spam source is not implemented")
        with open(os.path.join(data_dir, src["file"]), "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                if not line:
                    continue
                obj = json.loads(line)
                y = rule_label(src["rules"], obj)
                text = row_text(src.get("text"), obj) if y is not None else None
                if text is None:
                    continue
                key = text_key(text.encode("utf-8", "surrogatepass"))
                u = mix(key ^ salt)
                x = (u >> 11) / 9007199254740992.0
                k = key or 1
                if k in seen:
                    continue
                seen.add(k)
                split = "test" if x < test_frac else "val" if x < test_frac + val_frac else "train"
                if head_lines:  # after the keys: lines never move a row to another split
                    text = "".join(h["line"] + "\n" for h in src.get("head_lines", [])
                                   if matches(h["if"], obj)) + text
                out[split][0].append(text)
                out[split][1].append(y)
    return {k: (v[0], np.array(v[1])) for k, v in out.items()}


def check_against(splits, path, name):
    """Exits unless the spam-corpus rows of a `gardefou train --*-out` file are ours."""
    theirs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["source"] in SPAM_SOURCES:
                theirs.append((r["text"], r["labels"]["spam"]))
    ours = list(zip(splits[name][0], splits[name][1].tolist()))
    if sorted(theirs) != sorted(ours):
        sys.exit(f"spam_reference.py: {name} rows differ from {path} "
                 f"({len(ours)} here, {len(theirs)} there)")
    print(f"{name}: the {len(ours)} rows are those of {path}")


def features(kind):
    """A TF-IDF vectorizer pair (word 1-2-grams, char 3-5-grams), sublinear TF, L2 rows."""
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True,
                           token_pattern=r"(?u)\b\w+\b|[^\w\s]", dtype=np.float32)
    char = TfidfVectorizer(analyzer=kind, ngram_range=(3, 5), min_df=2, sublinear_tf=True,
                           lowercase=False, dtype=np.float32)
    return word, char


def clip(texts, max_bytes):
    if not max_bytes:
        return texts
    return [t.encode("utf-8")[:max_bytes].decode("utf-8", "ignore") for t in texts]


def prf(y, pred):
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    return p, r, f


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default=os.path.join(here, "..", "recipe.json"))
    ap.add_argument("--data-dir", help="where the datasets are (default: the recipe's data_dir)")
    ap.add_argument("--check", nargs=2, metavar=("VAL", "TEST"),
                    help="verify the rows against `gardefou train --val-out/--test-out` files")
    ap.add_argument("--quick", action="store_true", help="fewer settings per method")
    ap.add_argument("--more", action="store_true", help="also NB-SVM and a one-hidden-layer MLP")
    ap.add_argument("--scores", metavar="FILE",
                    help="also the product's row: `gardefou eval --scores-out` of the test split")
    ap.add_argument("--without-head-lines", action="store_true",
                    help="the texts without the spam sources' head_lines")
    args = ap.parse_args()

    t0 = time.process_time()
    s = load_splits(args.recipe, args.data_dir, not args.without_head_lines)
    for k in ("train", "val", "test"):
        print(f"{k}: {len(s[k][1])} rows, {int(s[k][1].sum())} spam")
    if args.check:
        check_against(s, args.check[0], "val")
        check_against(s, args.check[1], "test")
    (xt, yt), (xv, yv), (xs, ys) = s["train"], s["val"], s["test"]

    # Feature sets: char n-grams within word boundaries or across them, texts whole or cut at
    # the product's 8 KB (recipe train.max_bytes).
    cache = {}

    def mats(kind, max_bytes):
        key = (kind, max_bytes)
        if key not in cache:
            w, c = features(kind)
            tr = clip(xt, max_bytes)
            a = sp.hstack([w.fit_transform(tr), c.fit_transform(tr)]).tocsr()
            b = sp.hstack([w.transform(clip(xv, max_bytes)),
                           c.transform(clip(xv, max_bytes))]).tocsr()
            d = sp.hstack([w.transform(clip(xs, max_bytes)),
                           c.transform(clip(xs, max_bytes))]).tocsr()
            cache[key] = (a, b, d)
        return cache[key]

    feats = [("char_wb", 0)] if args.quick else [("char_wb", 0), ("char", 0), ("char_wb", 8192)]
    # C of logistic regression; the SVM takes C / 10, naive Bayes alpha = value / 100.
    cs = [1, 10, 100] if args.quick else [1, 3, 10, 30, 100, 300, 1000]
    both = [None, "balanced"]
    # name: (model of a setting value and class weights, setting values, class weights, features)
    methods = {
        "logistic regression": (lambda c, w: LogisticRegression(C=c, class_weight=w,
                                                                solver="liblinear",
                                                                max_iter=1000), cs, both, feats),
        "linear SVM": (lambda c, w: LinearSVC(C=c / 10, class_weight=w, max_iter=20000),
                       cs, both, feats),
        "multinomial naive Bayes": (lambda a, w: MultinomialNB(alpha=a / 100), cs, [None], feats),
    }
    if args.more:
        # NB-SVM's C is the SVM's; its features are binary, so the char kind alone varies.
        methods["NB-SVM"] = (lambda c, w: NBSVM(c, w), [3, 10, 30, 100], both,
                             feats[:2])
        # Each fit takes minutes: the hidden width is the setting, on the whole texts.
        methods["one hidden layer (MLP)"] = (lambda h, w: MLPClassifier(
            hidden_layer_sizes=(h,), alpha=1e-4, max_iter=30, random_state=1),
            [32, 128], [None], feats[:1])
    rows = []
    for name, (make, grid, weights, kinds) in methods.items():
        best = None
        for kind, mb in kinds:
            a, b, _ = mats(kind, mb)
            for c in grid:
                for w in weights:
                    clf = make(c, w).fit(a, yt)
                    sv = score(clf, b)
                    # The decision point (0.5 / 0) and the best threshold on validation.
                    f_def = prf(yv, sv > default_cut(clf))[2]
                    cut, f_best = best_cut(yv, sv)
                    print(f"  {name:24} {kind:7} max_bytes={mb:<5} {SETTING[name]}={c:<5} "
                          f"weights={str(w):8}: val F1 {f_def:.3f} (best {f_best:.3f})",
                          flush=True)
                    if best is None or f_def > best[0]:
                        best = (f_def, kind, mb, c, w, clf, cut, f_best)
        f_def, kind, mb, c, w, clf, cut, f_best = best
        _, b, d = mats(kind, mb)
        sv, st = score(clf, b), score(clf, d)
        pv, rv, fv = prf(yv, sv > default_cut(clf))
        p0, r0, f0 = prf(ys, st > default_cut(clf))
        p1, r1, f1 = prf(ys, st > cut)
        rows.append((name, f"{kind}, {'whole' if not mb else str(mb) + ' B'}, {SETTING[name]} {c}, "
                     f"weights {w}", fv, f_best, f0, p0, r0, f1, p1, r1,
                     average_precision_score(ys, st), f1_interval(ys, st > default_cut(clf))))

    print("\n| method | chosen on validation | val F1 (default / best cut) | test F1 (95% CI) | "
          "test P | test R | test F1 at the val cut (P, R) | test AUPRC |")
    print("|---|---|---|---|---|---|---|---|")
    for n, cfg, fv, fb, f0, p0, r0, f1, p1, r1, ap_, ci in rows:
        print(f"| {n} | {cfg} | {fv:.3f} / {fb:.3f} | {f0:.3f} ({ci[0]:.3f}-{ci[1]:.3f}) | "
              f"{p0:.3f} | {r0:.3f} | {f1:.3f} ({p1:.3f}, {r1:.3f}) | {ap_:.3f} |")
    if args.scores:
        product_row(args.scores, s["test"])
    print(f"\n{time.process_time() - t0:.0f} s CPU")


class NBSVM:
    """A linear SVM over binary features scaled by their naive Bayes log-count ratios r
    (smoothing 1), rows of unit length (Wang and Manning, ACL 2012). Scaling by r makes the
    margin cheaper for features whose presence alone separates the classes."""

    def __init__(self, c, class_weight):
        self.svm = LinearSVC(C=c / 10, class_weight=class_weight, max_iter=20000)
        self.r = None

    def _scaled(self, x):
        b = (x > 0).astype(np.float32) @ sp.diags(self.r)
        n = np.sqrt(np.asarray(b.multiply(b).sum(axis=1)).ravel())
        n[n == 0] = 1
        return sp.diags(1 / n) @ b

    def fit(self, x, y):
        b = (x > 0).astype(np.float32)
        p = 1 + np.asarray(b[y == 1].sum(axis=0)).ravel()
        q = 1 + np.asarray(b[y == 0].sum(axis=0)).ravel()
        self.r = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
        self.svm.fit(self._scaled(x), y)
        return self

    def decision_function(self, x):
        return self.svm.decision_function(self._scaled(x))


def f1_interval(y, pred, draws=10000, seed=1):
    """The 95% bootstrap interval of F1: test rows drawn with replacement, the decisions kept.
    With some 230 positives one error moves F1 by about 0.002, and the interval says how far
    another sample of the same sources could move it."""
    rng = np.random.default_rng(seed)
    y, pred = y.astype(bool), pred.astype(bool)
    f = np.empty(draws)
    for k in range(draws):
        i = rng.integers(0, len(y), len(y))
        tp = np.count_nonzero(y[i] & pred[i])
        wrong = np.count_nonzero(y[i] != pred[i])
        f[k] = 2 * tp / (2 * tp + wrong) if tp or wrong else 0.0
    return np.percentile(f, 2.5), np.percentile(f, 97.5)


def product_row(path, test):
    """F1 at 0.5 of the product's calibrated spam scores on the test rows, with its interval.
    The file must hold exactly the spam corpora's test rows (any order)."""
    texts, labels = test
    want = {}
    for t, y in zip(texts, labels.tolist()):
        want.setdefault(t, []).append(y)
    ys, pred = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("source") not in SPAM_SOURCES:
                continue
            if not want.get(r["text"]):
                sys.exit(f"spam_reference.py: {path} has a row that is not a test row")
            ys.append(want[r["text"]].pop())
            pred.append(r["scores"]["spam"] >= 0.5)
    if len(ys) != len(labels):
        sys.exit(f"spam_reference.py: {path} has {len(ys)} of the {len(labels)} test rows")
    ys, pred = np.array(ys), np.array(pred)
    p, r, f = prf(ys, pred)
    lo, hi = f1_interval(ys, pred)
    print(f"| gardefou ({os.path.basename(path)}) | | | {f:.3f} ({lo:.3f}-{hi:.3f}) | "
          f"{p:.3f} | {r:.3f} | | |")


def score(clf, x):
    if hasattr(clf, "predict_proba"):
        return clf.predict_proba(x)[:, 1]
    return clf.decision_function(x)


def default_cut(clf):
    return 0.5 if hasattr(clf, "predict_proba") else 0.0


def best_cut(y, s):
    """The score cut with the best F1 (midpoint between two neighbouring scores)."""
    order = np.argsort(-s)
    ys, ss = y[order], s[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    f = 2 * tp / (k + ys.sum())
    i = int(np.argmax(f))
    cut = (ss[i] + ss[i + 1]) / 2 if i + 1 < len(ss) else ss[i] - 1e-9
    return cut, float(f[i])


if __name__ == "__main__":
    main()
