"""Faults handled as kinds, at the boundary, for every chapter's `experiment()` (issue #23): a device name is checked
before anything runs, whatever the chapter, and the error names the argument, the value and what is available."""
import importlib

import pytest
from conftest import no_training
import torch

CHAPTERS = ['intro', 'kprior', 'zapping', 'piggyback', 'aft', 'kvb']


def _blobs(n=60, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    X = torch.randn(n, d, generator=g) + y[:, None].float()
    return X, y


BAD_DEVICES = ['meta', 'gpu!'] + ([] if torch.cuda.is_available() else ['cuda', 'cuda:0'])


@pytest.mark.parametrize('chapter', CHAPTERS)
@pytest.mark.parametrize('device', BAD_DEVICES)
def test_device_checked_before_anything_runs(chapter, device):
    X, y = _blobs()
    exp = importlib.import_module(f'adaptbook.{chapter}').experiment
    with no_training(), pytest.raises(ValueError, match=f"device={device!r}") as e:
        exp((X, y, X, y), device=device)
    assert 'available' in str(e.value) or 'torch device' in str(e.value), str(e.value)


def test_environment_device_named(monkeypatch):
    from adaptbook.core import get_device
    monkeypatch.setenv('ADAPTBOOK_DEVICE', 'meta')
    with pytest.raises(ValueError, match="ADAPTBOOK_DEVICE='meta'"):
        get_device()
