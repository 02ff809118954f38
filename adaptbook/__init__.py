"""Learn and use the methods that adapt a trained model instead of retraining it: K-priors, zapping, Piggyback, AFT and key-value bottlenecks, as runnable notebooks and a library.

Modules:

- `adaptbook.aft`: Adaptive feature transfer in one import: the method's building blocks (from the chapter) and the machinery around them: the zoo's teachers and student, the controls that know nothing (raw pixels, noise), the options and their checks, the labelled rows and their validation split, the teachers' stored features, every candidate chosen on validation, the rows and their cost, the figures and the widget.
- `adaptbook.cli`: The `adaptbook` command: `adaptbook data` shows which datasets are here; `adaptbook run NAME` runs a chapter's experiment and writes its figure, results and a table; `adaptbook run all` runs every chapter and the comparison.
- `adaptbook.compare`: Each chapter's headline on one chart: what adapting costs against retraining, how close it gets, what it keeps.
- `adaptbook.core`: Devices, seeding, modes, a small training loop, the cost ledger, results and the shared retrain-vs-adapt figure.
- `adaptbook.data`: Offline-first datasets as tensors, and the task builders every chapter uses: class-incremental streams, add/remove splits and few-shot episodes.
- `adaptbook.intro`: The first retrain-vs-adapt experiment: retrain on everything so far, or fine-tune on the newest chunk.
- `adaptbook.kprior`: K-priors in one import: the method's building blocks (from the chapter) and the machinery around them: the four adaptation tasks prepared on real data, the references (Batch, the old model, Replay) solved the same way, the memory sweep with its cost, the figures, the prose and the widget.
- `adaptbook.kvb`: The key-value bottleneck in one import: the method's building blocks (from the chapter) and the machinery around them: the converged i.i.d. references and the nearest class mean, the zoo's frozen encoder and the feature cache, the unlabelled data the keys are placed on, the class-incremental stream and its options, every method run stage by stage, the rows and their cost, the figures and the widget.
- `adaptbook.models`: The networks every chapter builds on: an MLP, a small CNN, torchvision backbones with one weights policy, heads found and replaced by name, frozen encoders (PCA, a pre-trained CNN) and one feature cache.
- `adaptbook.piggyback`: Piggyback in one import: the method's building blocks (from the chapter) and the machinery around them: the zoo's starting point and the ImageNet input, the tasks and their label budgets, the references (the head alone, a fine-tuned copy per task, training from scratch) learned the same way, the rows and their cost, the figures and the widget.
- `adaptbook.widgets`: `explore`: sliders for a method's knobs, the experiment rerun on release, the figure redrawn in place; and `curves_widget`, the chapters' widget built on it.
- `adaptbook.zapping`: Zapping in one import: the method's building blocks (from the chapter) and the machinery around them: the Omniglot pre-training data and the encoder cache, the zoo's encoders, the transfer tasks and their options, retraining from scratch, the learning rates chosen on validation classes, the rows and their cost, the figures and the widget.
- `adaptbook.zoo`: The book's pre-trained starting points: each entry is a recipe (the book's own code, its settings and a seed) and its result (weights, a sha256 and the record of the run that made them)."""

__version__ = "0.0.1"
