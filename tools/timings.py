"""Turn `nbdev-test --timing` output into nbs/timings.csv, the table of seconds per notebook the comparison chapter
shows on the site. tools/test.sh saves that output to test-artifacts/nbdev-test.log; after a run on the reference
machine (2 CPU cores), `python tools/timings.py [LOG]` and commit nbs/timings.csv."""
import datetime, os, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def parse(text: str) -> dict:
    "{notebook: seconds} from nbdev-test's '<name>.ipynb: N secs' lines."
    return {m[1]: int(m[2]) for m in re.finditer(r'^(\S+\.ipynb): (\d+) secs?$', text, re.M)}

if __name__ == '__main__':
    log = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / 'test-artifacts' / 'nbdev-test.log')
    secs = parse(log.read_text())
    if not secs: sys.exit(f'no "<notebook>.ipynb: N secs" lines in {log}')
    head = (f'# nbdev-test --timing, quick mode, two notebooks at a time with one torch thread each, '
            f'{os.cpu_count()} CPUs, {datetime.date.today().isoformat()}\n')
    rows = ''.join(f'{n},{t}\n' for n, t in sorted(secs.items()))
    (ROOT / 'nbs' / 'timings.csv').write_text(head + 'notebook,seconds\n' + rows)
    print(f'wrote nbs/timings.csv: {len(secs)} notebooks, {sum(secs.values())} s in all')
