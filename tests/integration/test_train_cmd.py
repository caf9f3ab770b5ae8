"""test_train_cmd.py — `gardefou train` and `gardefou eval` as commands, on a small synthetic
data set written to a temp dir: a recipe with a head for one category trains, the model file
is byte-identical when trained twice, `eval` on the held-out split it wrote finds the words that
separate the categories (the head's category included), `classify` loads the model, and bad
recipes are refused with status 2 and the reason.
args: the gardefou binary."""
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwtest as t  # noqa: E402

GF = sys.argv[1]

SPAM = ["free", "winner", "prize", "claim", "cash", "offer", "click", "urgent"]
THREAT = ["hurt", "destroy", "attack", "revenge", "burn", "smash"]
NEUTRAL = ["the", "weather", "garden", "river", "table", "music", "coffee", "morning", "friend",
           "book", "window", "road", "lunch", "meeting", "train", "letter"]


def run(args, timeout=300):
    return subprocess.run([GF] + args, capture_output=True, text=True, timeout=timeout)


def write_data(path, n=1500, seed=7):
    rnd = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            kind = ["spam", "threat", "ham"][i % 3]
            words = [rnd.choice(NEUTRAL) for _ in range(8)]
            if kind != "ham":
                pool = SPAM if kind == "spam" else THREAT
                words[rnd.randrange(8)] = rnd.choice(pool)
                words[rnd.randrange(8)] = rnd.choice(pool)
            f.write(json.dumps({"message": " ".join(words), "kind": kind}) + "\n")


def recipe(data_dir, **over):
    r = {
        "name": "tiny", "seed": 5, "categories": ["spam", "threat"], "data_dir": data_dir,
        "hash": {"buckets": 4096, "seed": 5, "word_ngrams": [1, 2], "char_ngrams": [3, 4]},
        "train": {"dim": 8, "hidden": 16, "epochs": 20, "batch": 16, "lr": 0.3},
        "head": {"categories": ["spam"], "dim": 8, "hidden": 8, "epochs": 20},
        "split": {"val": 0.1, "test": 0.2},
        "sources": [{"name": "synthetic", "file": "rows.jsonl", "license": "CC0", "ship": True,
                     "text": ["message"],
                     "rules": [{"if": {"kind": "spam"}, "pos": ["spam"], "neg": "*"},
                               {"if": {"kind": "threat"}, "pos": ["threat"], "neg": "*"},
                               {"if": {"kind": "ham"}, "neg": "*"}]}],
    }
    r.update(over)
    return r


def f1_of(out, cat):
    for line in out.splitlines():
        cols = line.split()
        if cols and cols[0] == cat:
            nums = [c for c in cols[1:] if c.replace(".", "", 1).isdigit()]
            return [float(x) for x in nums]
    return None


def interval_of(out, cat):
    """The (low, high) of a category's "f1 95% interval" column, or None."""
    for line in out.splitlines():
        cols = line.split()
        if cols and cols[0] == cat and "-" in cols[-1]:
            lo, _, hi = cols[-1].partition("-")
            try:
                return float(lo), float(hi)
            except ValueError:
                return None
    return None


def main():
    with tempfile.TemporaryDirectory() as tmp:
        write_data(os.path.join(tmp, "rows.jsonl"))
        rpath = os.path.join(tmp, "recipe.json")
        with open(rpath, "w") as f:
            json.dump(recipe(tmp), f)
        m1, m2 = os.path.join(tmp, "m1.gguf"), os.path.join(tmp, "m2.gguf")
        test = os.path.join(tmp, "test.jsonl")
        r = run(["train", "--recipe", rpath, "--out", m1, "--test-out", test, "-q"])
        t.check(r.returncode == 0 and os.path.getsize(m1) > 0, "train: " + r.stderr[-2000:])
        r = run(["train", "--recipe", rpath, "--out", m2, "-q"])
        t.check(r.returncode == 0, "train again: " + r.stderr[-2000:])
        if os.path.exists(m1) and os.path.exists(m2):
            with open(m1, "rb") as a, open(m2, "rb") as b:
                t.check(a.read() == b.read(), "the same recipe and data give the same bytes")
        r = run(["eval", "--model", m1, "--data", test])
        t.check(r.returncode == 0, "eval: " + r.stderr[-2000:])
        # the table's numbers for a category start with rows/positives, then P, R, F1
        for cat in ("spam", "threat"):
            nums = f1_of(r.stdout, cat)
            t.check(nums is not None and len(nums) >= 5 and nums[4] >= 0.9,
                    "%s separated on the held-out split: %r\n%s" % (cat, nums, r.stdout))
            # the last column: the bootstrap interval of F1, around F1
            ci = interval_of(r.stdout, cat)
            t.check(ci is not None and nums is not None and len(nums) >= 5 and
                    ci[0] <= nums[4] <= ci[1] <= 1.0,
                    "%s F1 inside its interval: %r %r\n%s" % (cat, nums, ci, r.stdout))
        r2 = run(["eval", "--model", m1, "--data", test])
        t.check(r2.stdout.split("\n")[2:] == r.stdout.split("\n")[2:],
                "eval prints the same table twice (the interval's seed is fixed)")
        # the trained model behind a policy: its head's category blocks, the other does not fire
        pol = os.path.join(tmp, "policy.json")
        with open(pol, "w") as f:
            json.dump({"version": 1, "rules": [
                {"id": "spam", "stage": "input", "classifier": "spam", "action": "block"},
                {"id": "threat", "stage": "input", "classifier": "threat", "action": "flag"}]}, f)
        verdicts = []
        for text in ("claim your free cash prize now", "the garden river in the morning"):
            r = run(["classify", "--policy", pol, "--model", m1, text])
            verdicts.append(json.loads(r.stdout).get("action") if r.returncode in (0, 1) and
                            r.stdout.startswith("{") else "rc %d %s" % (r.returncode, r.stderr[-300:]))
        t.check(verdicts == ["block", "allow"], "classify with the model: %r" % verdicts)
        # a head like the shipped one: linear, each bucket once per text, square-root pooling
        lin = os.path.join(tmp, "lin.json")
        with open(lin, "w") as f:
            json.dump(recipe(tmp, head={"categories": ["spam"], "dim": 8, "hidden": 0,
                                        "epochs": 20, "lr": 0.2, "pooling": "sqrt",
                                        "distinct": True}), f)
        m3 = os.path.join(tmp, "m3.gguf")
        r = run(["train", "--recipe", lin, "--out", m3, "-q"])
        t.check(r.returncode == 0, "train a distinct-feature head: " + r.stderr[-2000:])
        r = run(["eval", "--model", m3, "--data", test])
        nums = f1_of(r.stdout, "spam")
        t.check(r.returncode == 0 and nums is not None and len(nums) >= 5 and nums[4] >= 0.9,
                "distinct-feature head separates spam: %r\n%s" % (nums, r.stdout + r.stderr))
        r = run(["classify", "--policy", pol, "--model", m3, "claim your free cash prize now"])
        t.check(r.returncode in (0, 1) and r.stdout.startswith("{") and
                json.loads(r.stdout).get("action") == "block",
                "classify with the distinct-feature head: %s %s" % (r.stdout, r.stderr[-300:]))
        # bad recipes: status 2 and the reason
        bad = [
            (recipe(tmp, head={"categories": ["nope"], "dim": 8, "hidden": 8}), "nope"),
            (recipe(tmp, categories="spam"), "categories"),
            (recipe(tmp, head={"categories": ["spam"], "pooling": "max"}), "head.pooling"),
            (recipe(tmp, sources=[{"name": "x", "file": "missing.jsonl", "license": "CC0",
                                   "ship": True, "rules": [{"neg": "*"}]}]), "missing.jsonl"),
        ]
        # (a data file that cannot be read is an I/O failure, status 1; the others are usage)
        for i, (rc, why) in enumerate(bad):
            p = os.path.join(tmp, "bad%d.json" % i)
            with open(p, "w") as f:
                json.dump(rc, f)
            r = run(["train", "--recipe", p, "--out", os.path.join(tmp, "bad.gguf"), "-q"])
            want = 1 if why == "missing.jsonl" else 2
            t.check(r.returncode == want and why in r.stderr,
                    "bad recipe %d refused naming %r: rc %d %s" % (i, why, r.returncode,
                                                                   r.stderr[-500:]))
            t.check(not os.path.exists(os.path.join(tmp, "bad.gguf")), "no file from a bad recipe")
    return t.report()


if __name__ == "__main__":
    sys.exit(main())
