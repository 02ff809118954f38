"""nbdev-test runs several notebooks one after the other in one process, so a notebook that changes an environment
variable and deletes it afterwards changes it for the notebooks after it: a `del os.environ['ADAPTBOOK_CACHE']` sent
every later notebook's results to ~/.cache instead of CI's fresh cache (found at stop 27). A cell that sets an
`os.environ` entry must put back the value it found."""
import json, re
from pathlib import Path
import pytest

NBS = sorted((Path(__file__).resolve().parent.parent / 'nbs').glob('*.ipynb'))

def _sets_env(src: str) -> list[str]:
    return re.findall(r"os\.environ\[['\"](\w+)['\"]\]\s*=(?!=)", src)

@pytest.mark.parametrize('path', NBS, ids=[p.stem for p in NBS])
def test_notebooks_put_back_the_environment_they_change(path):
    bad = []
    for c in json.loads(path.read_text())['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] != 'code' or src.startswith('#| export'): continue
        for var in set(_sets_env(src)):
            saved = re.search(rf"=\s*os\.environ\.get\(['\"]{var}['\"]\)", src)
            if not saved: bad.append(f"{c.get('id')}: sets {var} without saving the value it found")
    assert not bad, f"{path.name}: " + '; '.join(bad)

def test_the_check_sees_a_delete_without_restore():
    assert _sets_env("os.environ['ADAPTBOOK_CACHE'] = d\ndel os.environ['ADAPTBOOK_CACHE']") == ['ADAPTBOOK_CACHE']
    assert _sets_env("x = os.environ['A'] == 'b'") == []
