import os
import pytest

def _shared_data():
    "The shared data folder: $ADAPTBOOK_DATA, else ../shared/data beside the checkout."
    p = os.environ.get('ADAPTBOOK_DATA') or os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')
    return os.path.abspath(p)

@pytest.fixture(scope='session')
def shared_data():
    "The real-data folder. Outside CI a machine without it skips; in CI (CI=true) a missing folder fails."
    p = _shared_data()
    if not os.path.isdir(p):
        if os.environ.get('CI'): pytest.fail(f'CI=true but the shared data folder {p} is missing')
        pytest.skip(f'no shared data at {p} (set ADAPTBOOK_DATA)')
    return p
