"""Learn and use the methods that adapt a trained model instead of retraining it: K-priors, zapping, Piggyback, AFT and key-value bottlenecks, as runnable notebooks and a library.

Modules:

- `adaptbook.cli`: The `adaptbook` command: `adaptbook data` shows which datasets are here; `adaptbook run NAME` runs a chapter's experiment and writes its figure, results and a table.
- `adaptbook.data`: Offline-first datasets as tensors, and the task builders every chapter uses: class-incremental streams, add/remove splits and few-shot episodes."""

__version__ = "0.0.1"
