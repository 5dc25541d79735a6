"""Write digits.csv from scikit-learn's bundled copy of the UCI digits (run once, by hand).

scikit-learn is NOT a dependency of the course: run this in a throwaway environment,
from the repository root:

    python3 -m venv /tmp/skl && /tmp/skl/bin/pip install scikit-learn==1.9.1
    /tmp/skl/bin/python data/digits/make_digits.py

It prints the SHA-256 of the file it wrote; that value is pinned in
autograder/nncourse/data.py (DIGITS_SHA256) and in SHA256SUMS beside this script.
The output depends only on the data and on the seed below, not on the scikit-learn version's
split helpers: the stratified split is done here with numpy.
"""

import hashlib
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

SEED = 0  # numpy.random.default_rng seed of the split
N_TEST = 360  # about 20 % of 1,797 (35 to 37 images per class)

here = Path(__file__).resolve().parent
bunch = load_digits()
images = bunch.data.astype(np.int64)  # (1797, 64), integers 0..16
labels = bunch.target.astype(np.int64)  # (1797,), 0..9
assert images.shape == (1797, 64) and images.min() == 0 and images.max() == 16
assert np.array_equal(images, bunch.data)  # the values really are integers

# Stratified split: the same share of every class goes to the test set. Per class, the
# number of test rows is 20 % of the class, rounded; the rounding remainders are settled
# so that the test set has exactly N_TEST rows (largest remainders first).
rng = np.random.default_rng(SEED)
classes, counts = np.unique(labels, return_counts=True)
exact = counts * N_TEST / len(labels)
per_class = np.floor(exact).astype(int)
for c in np.argsort(-(exact - per_class), kind="stable")[: N_TEST - per_class.sum()]:
    per_class[c] += 1
is_test = np.zeros(len(labels), dtype=bool)
for c, k in zip(classes, per_class):
    rows = np.flatnonzero(labels == c)
    is_test[rng.permutation(rows)[:k]] = True
assert is_test.sum() == N_TEST

out = here / "digits.csv"
header = "index,split,label," + ",".join(f"p{i:02d}" for i in range(64))
with open(out, "w", newline="\n") as f:
    f.write(header + "\n")
    for i in range(len(labels)):
        split = "test" if is_test[i] else "train"
        f.write(f"{i},{split},{labels[i]}," + ",".join(str(v) for v in images[i]) + "\n")

digest = hashlib.sha256(out.read_bytes()).hexdigest()
(here / "SHA256SUMS").write_text(f"{digest}  digits.csv\n")
print(f"wrote {out} ({out.stat().st_size} bytes): {len(labels) - N_TEST} train, {N_TEST} test")
print("sha256", digest)
