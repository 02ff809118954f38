"""Zapping: head-only against all-layers transfer (the whole ConvNet fine-tuned), sequential and i.i.d., from the zoo's
i.i.d. encoders zapped never and every epoch, on 5 new Omniglot classes (5 validation classes choose the rate from
1e-2, 1e-3, 1e-4), three seeds. Prints each protocol's accuracy (mean over seeds, per seed), how far the encoder moved
(`encoder_shift`, a fraction of its norm) and the seconds. Asserts nothing. About 30 s on one CPU thread. The chapter
builds `train_all` and points here; it does not run this, to stay in its 3-minute budget.

Run: python bench/zapping_all_layers.py"""
import time

import numpy as np
import torch

from adaptbook.zapping import experiment

PROTOCOLS = ('seq_head', 'seq_all_layers', 'iid_head', 'iid_all_layers')


def main(seeds=(0, 1, 2)):
    t = time.perf_counter()
    rows = [r for s in seeds for r in experiment('omniglot', zap_every=(0, 1), pretraining=('iid',), seed=s, n_classes=5,
                                                 val_classes=5, lrs=(1e-2, 1e-3, 1e-4), methods=PROTOCOLS)
            if r.get('protocol') in PROTOCOLS]
    print(f"5 new classes (chance 0.200), {len(seeds)} seeds, {time.perf_counter() - t:.0f} s")
    print(f"{'protocol':16} {'zap':>4} {'mean acc':>9} {'per seed':>22} {'encoder shift':>14}")
    for p in PROTOCOLS:
        for z in (0, 1):
            sel = [r for r in rows if r['protocol'] == p and r['zap_every'] == z]
            acc = np.array([r['acc'] for r in sel])
            print(f"{p:16} {z:4d} {acc.mean():9.3f} {' '.join(f'{a:.3f}' for a in acc):>22} "
                  f"{np.mean([r['encoder_shift'] for r in sel]):14.1%}")


if __name__ == '__main__':
    torch.set_num_threads(1)
    main()
