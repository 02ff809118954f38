"""Learn and use the methods that adapt a trained model instead of retraining it: K-priors, zapping, Piggyback, AFT and key-value bottlenecks, as runnable notebooks and a library.

Modules:

- `adaptbook.aft_method`: Move a big model's useful features into a small model: a kernel regulariser toward the teacher's stored features, re-weighted by learned weights ρ (one per teacher feature) that switch off the features the task does not need.
- `adaptbook.cli`: The `adaptbook` command: `adaptbook data` shows which datasets are here; `adaptbook run NAME` runs a chapter's experiment and writes its figure, results and a table; `adaptbook run all` runs every chapter and the comparison.
- `adaptbook.compare`: Each chapter's headline on one chart: what adapting costs against retraining, how close it gets, what it keeps.
- `adaptbook.core`: Devices, seeding, modes, a small training loop, the cost ledger, results and the shared retrain-vs-adapt figure.
- `adaptbook.data`: Offline-first datasets as tensors, and the task builders every chapter uses: class-incremental streams, add/remove splits and few-shot episodes.
- `adaptbook.intro`: The first retrain-vs-adapt experiment: retrain on everything so far, or fine-tune on the newest chunk.
- `adaptbook.models`: The networks every chapter builds on: an MLP, a small CNN, torchvision backbones with one weights policy, heads found and replaced by name, frozen encoders (PCA, a pre-trained CNN) and one feature cache.
- `adaptbook.piggyback_method`: One binary mask per task over a frozen network: 1 bit per weight, old tasks untouched.
- `adaptbook.widgets`: `explore`: sliders for a method's knobs, the experiment rerun on release, the figure redrawn in place; and `curves_widget`, the chapters' widget built on it.
- `adaptbook.zoo`: The book's pre-trained starting points: each entry is a recipe (the book's own code, its settings and a seed) and its result (weights, a sha256 and the record of the run that made them)."""

__version__ = "0.0.1"
