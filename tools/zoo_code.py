"""Which shipped zoo entries are checked against the code that makes them, and checking more of them.

Every entry trained now records its recipe's `code()` (a digest of the recipe's build and train functions and the
functions they depend on, docstrings left out). A cached entry whose code differs is trained again; a shipped one
warns, and `tests/test_zoo.py` fails while the package holds one. Entries shipped before records named their code
carry none: they are served, and this tool is how one gets checked.

    python tools/zoo_code.py
        Each shipped record: its name and seed, the code it records (or '-'), whether that is today's, and the
        commit that trained it.
    python tools/zoo_code.py --verify NAME [NAME ...] [--seeds 0 1 2]
        Train each entry again with today's code, one thread, into a temporary folder, and compare every tensor of
        its weights with the shipped file's (not the file's sha256: torch's archive once held the file's name, and the
        writer's temporary name changed). Where every tensor agrees bit for bit, today's code makes the shipped weights,
        and its `code()` is written into the shipped record. Where one differs, nothing is written and the entry stays
        unchecked (retrain it with `adaptbook pretrain NAME --seed S --ship --force`). Takes as long as the training
        took (the record's `seconds`).
"""
import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault('ADAPTBOOK_THREADS', '1')   # the shipped entries were trained on one thread

import torch  # noqa: E402

from adaptbook import core, zoo  # noqa: E402


def records():
    for js in sorted(zoo.shipped_dir().glob('*.json')):
        yield js, json.loads(js.read_text())


def report() -> None:
    today = {n: zoo.get(n).code() for n in zoo.names()}
    print(f"{'entry':<24} {'seed':>4} {'code recorded':<17} {'today':<6} trained at")
    for _, rec in records():
        code = rec.get('code')
        same = '-' if code is None else ('yes' if code == today[rec['name']] else 'NO')
        print(f"{rec['name']:<24} {rec['seed']:>4} {code or '-':<17} {same:<6} {rec['provenance'].get('commit')}")


def verify(names, seeds) -> int:
    bad = 0
    for js, rec in records():
        if rec['name'] not in names or (seeds and rec['seed'] not in seeds): continue
        with tempfile.TemporaryDirectory() as out:
            net = zoo.pretrain(rec['name'], rec['seed'], rec['mode'], out=out, verbose=False)
            again = net.zoo_record
            new = net.state_dict()
        old = torch.load(js.with_suffix('.pt'), map_location='cpu', weights_only=True)
        differ = [k for k in old if k not in new or not torch.equal(old[k], new[k])] + [k for k in new if k not in old]
        same = not differ
        print(f"{rec['name']} seed {rec['seed']}: retrained in {again['seconds']:.0f} s; "
              + ('every tensor the same' if same else f"{len(differ)} of {len(old)} tensors DIFFER, e.g. {differ[0]}"))
        if same:
            rec['code'] = again['code']
            core.write_atomic(js, lambda tmp: tmp.write_text(json.dumps(rec, indent=1, sort_keys=True, default=str)))
        else: bad += 1
    return bad


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--verify', nargs='+', metavar='NAME')
    ap.add_argument('--seeds', nargs='+', type=int)
    a = ap.parse_args()
    if a.verify:
        unknown = set(a.verify) - set(zoo.names())
        if unknown: sys.exit(f"not zoo entries: {', '.join(sorted(unknown))}; entries: {', '.join(zoo.names())}")
        sys.exit(1 if verify(set(a.verify), set(a.seeds or ())) else 0)
    report()
