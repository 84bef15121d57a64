"""How the reader's thresholds were chosen: on MNIST's validation digits and non-digits made from
validation images (never the test set).

    nice .venv/bin/python benchmarks/calibrate_reader.py MODEL.npz

For each pair (not_digit_at, sure_at) it prints the share of validation digits the reader would
reject, the accuracy on photos of validation digits (10 conditions, rejections counted wrong) and
the share of non-digits rejected (blank ones included). nndl.reading's NOT_DIGIT_AT and SURE_AT are
0.5 and 0.5 (the more probable of "digit" and "not a digit"; the top digit more probable than all
the others together), kept while they reject under 0.1% of the validation digits and at least 95%
of the non-digits; lower thresholds reject a point or two more non-digits for more digits rejected.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import nndl  # noqa: E402
from nndl.data.images import NoDigitError, preprocess  # noqa: E402
from nndl.data.marks import NON_DIGITS, non_digit  # noqa: E402
from nndl.data.reading_set import looks_like_a_one  # noqa: E402
from nndl.data.synthetic import DIGIT_CONDITIONS, on_paper, photo  # noqa: E402
from nndl.reading import split_probabilities  # noqa: E402

net = nndl.load(sys.argv[1])
_, (xv, yv), _ = nndl.data.load_mnist()
rng = np.random.default_rng(123)
P_direct = net.predict_proba(xv)
xs, ys = [], []
for k, c in enumerate(DIGIT_CONDITIONS):
    for i in rng.choice(len(xv), 150, replace=False):
        try:
            xs.append(preprocess(photo(xv[i], c, rng))); ys.append(yv[i])
        except NoDigitError:
            pass
P_photo = net.predict_proba(np.stack(xs)); y_photo = np.array(ys)
nd = []
for kind in NON_DIGITS:
    for _ in range(80):
        ink = non_digit(kind, rng, digits=xv)
        if looks_like_a_one(ink):
            continue
        e = dict(zip(("shadow", "gradient", "ruled"), rng.random(3) < 0.15))
        try:
            nd.append(preprocess(on_paper(ink, rng, **e)))
        except NoDigitError:
            nd.append(None)
blank_nd = sum(v is None for v in nd)
P_nd = net.predict_proba(np.stack([v for v in nd if v is not None]))

def rejected(P, nda, sure):
    d, r = split_probabilities(P)
    rej = d.max(axis=1) < sure
    if r is not None:
        rej |= r >= nda
    return rej

best = []
for nda in [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01]:
    for sure in [0.0, 0.3, 0.4, 0.5, 0.6, 0.7]:
        rv = rejected(P_direct, nda, sure).mean()
        rp = rejected(P_photo, nda, sure)
        dp, _ = split_probabilities(P_photo)
        acc_photo = ((dp.argmax(1) == y_photo) & ~rp).mean()
        rn = (rejected(P_nd, nda, sure).sum() + blank_nd) / len(nd)
        best.append((nda, sure, rv, acc_photo, rn))
for b in best:
    print(f"not_digit_at {b[0]:.2f} sure_at {b[1]:.2f} | val rejected {100 * b[2]:.3f}% | "
          f"photo acc {100 * b[3]:.2f}% | non-digits rejected {100 * b[4]:.1f}%")
