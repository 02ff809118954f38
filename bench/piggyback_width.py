"""Piggyback's gap to the paper's reference against backbone width, on the chapter's clothes target.

For each width the chapter's ConvNet (`models.small_cnn`, two conv blocks and a hidden layer) is pre-trained on digits
and characters (`piggyback.digits_source()`: MNIST train + Omniglot background, 5 epochs, Adam 1e-3, batches of 128,
as the zoo entry `digits-omniglot-cnn`, whose settings are the middle width), then frozen and adapted to clothes
(`piggyback.CLOTHES`, 0-4 then 5-9, the whole pool of 3,000 labels per task) through the chapter's own `experiment`
with Piggyback, the head alone and a fine-tuned copy per task (Mallya et al.'s "individual networks"), every learning
rate chosen on validation. Prints each width's maskable weights, the mean accuracy of each method over the two tasks
and Piggyback's gaps, per seed. Asserts nothing.

`--out FILE` writes every row as `Results` JSON (each row with its `widths` and the backbone's held-out MNIST accuracy
`pretrain_acc`) with the provenance and the Piggyback code's digest (`core.run_digest('piggyback')`): the chapter reads
`adaptbook/measured/piggyback_width.json` written this way (`piggyback.measured_width`).

usage: python bench/piggyback_width.py [--widths 8,16,64 16,32,128 32,64,256] [--seeds 0 1] [--pretrain-epochs 5]
       [--out FILE]   (one CPU thread: about 20 minutes for the defaults, most of it the widest backbone)"""
import argparse, time
from pathlib import Path

from adaptbook import piggyback as pg
from adaptbook.core import Results, evaluate, fit, provenance, run_digest, threads
from adaptbook.models import small_cnn


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--widths', nargs='+', default=['8,16,64', '16,32,128', '32,64,256'],
                   help='conv1,conv2,hidden per backbone')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--pretrain-epochs', type=int, default=5)
    p.add_argument('--out', type=Path, default=None, help='write the rows here (Results JSON)')
    a = p.parse_args()
    t0, parts = time.perf_counter(), []
    X, y, Xh, yh = pg.digits_source()
    print(f"{'widths':>12s} {'weights':>8s} {'pre-train':>9s} {'seed':>4s} {'piggyback':>9s} {'head':>6s} "
          f"{'copies':>6s} {'pb-head':>7s} {'pb-copies':>9s}")
    for w in a.widths:
        c1, c2, h = (int(v) for v in w.split(','))
        net = small_cnn((28, 28), int(y.max()) + 1, widths=(c1, c2), hidden=h, seed=0)
        t = time.perf_counter()
        with threads(1): fit(net, X, y, epochs=a.pretrain_epochs, bs=128, lr=1e-3, seed=0, device='cpu', verbose=False)
        pre = evaluate(net.eval(), Xh, yh, device='cpu')['acc']
        for s in a.seeds:
            r = pg.experiment(pg.CLOTHES, backbone=net, seed=s, methods=('piggyback', 'classifier', 'individual'),
                              n_labels=None, mode='quick', device='cpu')
            for row in r: row.update(widths=w, pretrain_acc=pre)
            parts.append(r)
            acc = {x['method']: 100 * x['acc'] for x in r if x['role'] != 'setup'}
            n = r.where(method='piggyback')[0]['n_masked']
            print(f"{w:>12s} {n:8d} {pre:9.3f} {s:4d} {acc['piggyback']:9.1f} {acc['classifier']:6.1f} "
                  f"{acc['individual']:6.1f} {acc['piggyback'] - acc['classifier']:+7.1f} "
                  f"{acc['piggyback'] - acc['individual']:+9.1f}   ({time.perf_counter() - t:.0f} s)", flush=True)
    if a.out:
        res = Results.merge(*parts, seconds=time.perf_counter() - t0, code=run_digest('piggyback'),
                            provenance=provenance(mode='quick', seed=a.seeds[0]), seeds=a.seeds, widths=a.widths,
                            backbone='small_cnn pre-trained on piggyback.digits_source() at each of widths',
                            pretrain_epochs=a.pretrain_epochs)
        res.to_json(a.out)
        print(f"wrote {a.out}")


if __name__ == '__main__':
    main()
