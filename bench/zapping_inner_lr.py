"""Zapping: ASB's inner (sequential-phase) learning rate on the chapter's BatchNorm ConvNet (`arch='bn'`) and on the
authors' kind of network (`arch='in'`: InstanceNorm, no hidden layer), at the zoo's width. The authors' ASB uses 0.1
on their InstanceNorm network; this prints, for 1e-3, 1e-2 and 0.1, the batch-phase loss over 200 episodes on all
964 Omniglot background classes (seed 0): its mean over the first and last 20 episodes, its largest value and the
episodes that end in NaN. Asserts nothing. About 25 s per rate and network on 2 cores.

Run: python bench/zapping_inner_lr.py"""
import math
import time

import numpy as np
import torch

from adaptbook import zapping


def main(episodes: int = 200):
    Xp, yp, _, _ = zapping.pretrain_data('omniglot', 964)
    arch = zapping.ZOO_QUICK
    print(f"ASB, zap every episode, {episodes} episodes, widths {arch['widths']}, hidden {arch['hidden']}, "
          f"memory {arch['memory']}, outer Adam {arch['lr']}; chance-level loss ln 964 = {math.log(964):.2f}")
    print(f"{'network':>7} {'inner lr':>8} {'first 20':>9} {'last 20':>9} {'largest':>12} {'NaN episodes':>13} {'seconds':>8}")
    for net_arch, inner in ((a, i) for a in zapping.ARCHS for i in (1e-3, 1e-2, 1e-1)):
        t = time.perf_counter()
        net = zapping.convnet(964, arch['widths'], arch['hidden'], seed=0, arch=net_arch)
        loss = np.array(zapping.pretrain_asb(net, Xp, yp, episodes=episodes, zap_every=1, shots=arch['shots'],
                                             memory=arch['memory'], inner_lr=inner, lr=arch['lr'], fan='stacked'))
        ok = ~np.isnan(loss)
        mean = lambda a: f"{np.nanmean(a):9.2f}" if (~np.isnan(a)).any() else f"{'NaN':>9}"
        print(f"{net_arch:>7} {inner:8.0e} {mean(loss[:20])} {mean(loss[-20:])} {loss[ok].max():12.4g} {int((~ok).sum()):13d} "
              f"{time.perf_counter() - t:8.1f}")


if __name__ == '__main__':
    torch.set_num_threads(2)
    main()
