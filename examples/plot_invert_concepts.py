"""
Labelling units with concepts (INVERT)
======================================

INVERT (Bykov et al., NeurIPS 2023) explains a unit — a neuron, a channel, a class
logit — by the formula over human-defined concepts that the unit ranks highest, scored by
ROC-AUC and tested with a Mann–Whitney U test. Here the truth is known: the activations
are synthetic, with a concept formula planted in each unit, so we can check what
:class:`midlogit.invert.ConceptLabeler` finds, how to read its p-values, and what it
says about a logit's mid-range.
"""

# %%
# Concepts and activations with planted formulas
# ----------------------------------------------
# 4000 "images", each with 25 binary concepts. Water backgrounds go with waterbirds (80 %
# of waterbirds, 20 % of landbirds) — the spurious correlation of Waterbirds. Four
# units:
#
# * a *waterbird logit* driven by the class and, more weakly, by water;
# * *neuron 1*, which fires for ``duck | boat``;
# * *neuron 2*, which fires for ``tree & ~sky``;
# * a *noise* unit that tracks nothing.
import matplotlib.pyplot as plt
import numpy as np

from midlogit.invert import ConceptLabeler
from midlogit.plotting import plot_logit_histogram

rng = np.random.default_rng(0)
n = 4000
waterbird = rng.random(n) < 0.3
water = np.where(waterbird, rng.random(n) < 0.8, rng.random(n) < 0.2)
concepts = {
    "waterbird": waterbird,
    "landbird": ~waterbird,
    "duck": waterbird & (rng.random(n) < 0.5),
    "water": water,
    "boat": water & (rng.random(n) < 0.3),
    "tree": ~water & (rng.random(n) < 0.6),
    "sky": rng.random(n) < 0.5,
    "grass": ~water & (rng.random(n) < 0.4),
    "sand": rng.random(n) < 0.2,
}
# Sixteen more concepts, independent of everything: the distractors a real concept
# vocabulary is full of.
for name in ["cloud", "fence", "rain", "snow", "people", "car", "dog", "flower", "rock",
             "road", "house", "mountain", "bench", "fish", "reed", "ice"]:
    concepts[name] = rng.random(n) < rng.uniform(0.05, 0.4)
names = list(concepts)
C = np.column_stack(list(concepts.values()))

units = ["waterbird logit", "neuron 1", "neuron 2", "noise"]
A = np.column_stack([
    4.0 * concepts["waterbird"] + 2.0 * concepts["water"] + 0.5 * rng.normal(size=n),
    2.0 * (concepts["duck"] | concepts["boat"]) + rng.normal(size=n),
    1.5 * (concepts["tree"] & ~concepts["sky"]) + rng.normal(size=n),
    rng.normal(size=n),
])
print(f"A: {A.shape[0]} samples x {A.shape[1]} units; C: {C.shape[1]} concepts")

# %%
# Labelling every unit
# --------------------
# Formulas of up to three literals, beam width three (the INVERT paper's setting).
# ``min_fraction=0.02`` ignores formulas covering fewer than 2 % of the samples, whose
# AUC is noisy.

labeler = ConceptLabeler(max_length=3, beam_size=3, min_fraction=0.02, random_state=0)
labeler.fit(A, C, concept_names=names)
for unit, explanations in zip(units, labeler.explanations_):
    best = explanations[0]
    print(f"{unit:16s} {str(best.formula):28s} AUC {best.auc:.3f}  "
          f"log10 p {best.log_p_value / np.log(10):8.1f}")

# %%
# The three planted formulas are recovered. The waterbird logit is labelled by its
# class, as it should be. Every unit's AUC against every single concept is in
# ``auc_``; the formulas beat the best single concepts where the planted rule combines
# two.
fig, ax = plt.subplots(figsize=(7, 2.8))
image = ax.imshow(labeler.auc_, vmin=0, vmax=1, cmap="RdBu_r")
ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
ax.set_yticks(range(len(units)), units)
for (i, j), value in np.ndenumerate(labeler.auc_):
    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
fig.colorbar(image, ax=ax, label="AUC")
ax.set_title("Single-concept AUC of each unit")
fig.tight_layout()

# %%
# Reading the p-values
# --------------------
# The p-values are astronomically small — far below what float64 can hold, which is
# why ``log_p_value`` is given — and, more importantly, *in-sample*: each formula was
# picked as the best of thousands on the very samples the test is computed on. Look at
# the noise unit: its best formula has an in-sample p-value that would pass a 5 % test.
#
# ``test_size`` selects the formulas on one half of the samples and computes AUC,
# fraction and p-value on the other. The real units keep their formulas, AUCs and
# significance; the noise unit's AUC shrinks toward 0.5 and its "finding" does not hold
# up.
held_out = ConceptLabeler(
    max_length=3, beam_size=3, min_fraction=0.02, test_size=0.5, random_state=0
).fit(A, C, concept_names=names)

print(f"{'unit':16s} {'formula chosen on half':28s} {'AUC there':>9s} {'AUC held out':>12s} "
      f"{'p held out':>10s}")
for unit, explanations in zip(units, held_out.explanations_):
    e = explanations[0]
    print(f"{unit:16s} {str(e.formula):28s} {e.selection_auc:9.3f} {e.auc:12.3f} "
          f"{e.p_value:10.3g}")

# %%
# An in-sample p-value of ``0`` is an underflow, not a certainty; compare
# ``log_p_value`` (natural log) across units instead.

# %%
log10 = np.log(10)
in_sample_log = [-e[0].log_p_value / log10 for e in labeler.explanations_]
held_log = [-e[0].log_p_value / log10 for e in held_out.explanations_]
fig, ax = plt.subplots(figsize=(6, 2.8))
y = np.arange(len(units))
ax.barh(y - 0.2, in_sample_log, height=0.4, label="in-sample")
ax.barh(y + 0.2, held_log, height=0.4, label="held-out (test_size=0.5)")
ax.axvline(-np.log10(0.05), color="0.3", linestyle=":", label="p = 0.05")
ax.set_xscale("log")
ax.set_yticks(y, units)
ax.invert_yaxis()
ax.set_xlabel("-log10 p of the best formula")
ax.legend(fontsize="small")
fig.tight_layout()

# %%
# The mid-range of the logit
# --------------------------
# Over all samples, the waterbird logit is labelled ``waterbird``: right, and
# incomplete. O'Mahony et al. (WACV 2025) argue that what a unit *associates* with its
# label shows in the middle of its range. ``activation_range`` restricts INVERT to the
# samples between two quantiles of each unit — here the middle 40 %, which holds the
# landbirds the logit scores highest: those on water.
mid = ConceptLabeler(max_length=3, beam_size=3, min_fraction=0.02,
                     activation_range=(0.3, 0.7))
mid.fit(A[:, :1], C, concept_names=names)
print(mid.to_markdown(["waterbird logit, middle 40 %"], spurious=["water"]))

# %%
# ``water`` enters the explanation, and flagging ``water`` as a spurious concept flags
# the logit. The histogram shows the band and who fills it.

group = concepts["waterbird"] * 2 + concepts["water"]
fig = plot_logit_histogram(
    A[:, 0], group, thresholds=tuple(mid.activation_thresholds_[0]),
    group_names=["landbird, land", "landbird, water", "waterbird, land", "waterbird, water"],
)
fig.axes[0].set_title("Waterbird logit, with the band INVERT was restricted to")
