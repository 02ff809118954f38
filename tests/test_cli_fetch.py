"""`adaptbook fetch`: offline first (nothing downloaded when the files are in the data pack or $ADAPTBOOK_DATA),
one-line instruction and exit 2 on an empty machine with no way to download; `adaptbook run all` names every chapter
it could not run and exits 1."""
import os, shutil, subprocess
import pytest

def test_cli_fetch_all_offline(shared_data):
    r = subprocess.run(['adaptbook', 'fetch', 'all'], capture_output=True, text=True,
                       env=dict(os.environ, ADAPTBOOK_DATA=shared_data))
    assert r.returncode == 0, r.stderr
    assert 'mnist: found in <adaptbook>/pack/mnist.npz' in r.stdout and 'downloaded' not in r.stdout
    assert 'fashion-mnist: found in $ADAPTBOOK_DATA/fashion-mnist' in r.stdout

def test_cli_fetch_missing_says_what_to_do(tmp_path):
    dead = 'http://127.0.0.1:9'                     # no network: every connection refused by a proxy that is not there
    r = subprocess.run(['adaptbook', 'fetch', 'fashion-mnist'], capture_output=True, text=True,
                       env=dict(os.environ, ADAPTBOOK_DATA=str(tmp_path), HOME=str(tmp_path), http_proxy=dead,
                                https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead, no_proxy='', NO_PROXY=''))
    assert r.returncode == 2 and 'fashion-mnist is missing: run `adaptbook fetch fashion-mnist`' in r.stderr, r.stderr
    assert 'or put its files (train-images-idx3-ubyte.gz' in r.stderr and 'Download failed:' in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

def test_cli_fetch_unknown():
    r = subprocess.run(['adaptbook', 'fetch', 'nope'], capture_output=True, text=True)
    assert r.returncode == 2 and "dataset 'nope' is not known" in r.stderr


def test_run_all_names_a_chapter_without_its_data_and_fails(tmp_path, monkeypatch):
    "A chapter whose dataset cannot be had is not run; the others run; summary.md names it and why; it raises."
    from adaptbook import cli, core, data
    core.load_chapters()
    def no_data(*a, **k): raise data.DatasetNotFound("dataset 'a7a' is not in /nowhere; no network to download it", 'a7a')
    monkeypatch.setattr(cli, 'CHAPTERS', ('intro', 'kprior'))
    monkeypatch.setitem(core.EXPERIMENTS, 'kprior', {**core.EXPERIMENTS['kprior'], 'run': no_data})
    with pytest.raises(cli.ChaptersNotRun) as e: cli.run_all('quick', tmp_path, fetch=False, verbose=False)
    assert list(e.value.failed) == ['kprior'] and "dataset 'a7a'" in str(e.value)
    assert (tmp_path / 'intro.json').exists() and not (tmp_path / 'kprior.json').exists()
    text = (tmp_path / 'summary.md').read_text()
    assert '## Chapters not run' in text and '**kprior** was not run' in text and "dataset 'a7a'" in text


def test_run_all_without_a_pack_file_exits_1_naming_the_chapter_and_its_data(tmp_path, monkeypatch, capsys):
    "The issue's check: a chapter's pack file removed, no data elsewhere, no network: exit 1 naming both."
    from adaptbook import cli, core, data
    pack = tmp_path / 'pack'
    shutil.copytree(data.PACK, pack)
    (pack / 'usps.npz').unlink()                 # the K-priors headline's data
    monkeypatch.setattr(data, 'PACK', pack)
    monkeypatch.setattr(data, 'CACHE', tmp_path / 'cache')
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path / 'data'))
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path / 'results-cache'))     # nothing computed earlier
    def offline(name, *a, **k): raise data.DownloadError(f'{name}: could not download (no network here)')
    monkeypatch.setattr(data, 'fetch', offline)
    core.load_chapters()
    monkeypatch.setattr(cli, 'CHAPTERS', ('intro', 'kprior'))
    assert cli.main(['run', 'all', '--out', str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err
    err = err[err.index('adaptbook: error:'):]
    assert err.startswith('adaptbook: error: 1 chapter could not run') and '  - kprior:' in err and 'usps' in err
    assert 'usps.npz in' in err and 'git checkout -- adaptbook/pack' in err
    text = (tmp_path / 'out' / 'summary.md').read_text()
    assert '**kprior** was not run' in text and 'usps.npz' in text


def test_run_into_a_folder_that_cannot_be_made_says_which(tmp_path):
    "An output folder that cannot be made (a file is in the way): one `adaptbook: error:` line naming it, no work."
    (tmp_path / 'file').write_text('x')
    r = subprocess.run(['adaptbook', 'run', 'intro', '--out', str(tmp_path / 'file' / 'sub')], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count('\n') == 1, r.stderr
    assert r.stderr.startswith('adaptbook: error: cannot make the output folder') and str(tmp_path / 'file' / 'sub') in r.stderr


def test_run_into_a_read_only_folder_says_which_and_writes_nothing(tmp_path):
    import stat
    import pytest
    ro = tmp_path / 'ro'
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(ro, os.W_OK): pytest.skip('running as root: permissions do not apply')
        r = subprocess.run(['adaptbook', 'run', 'intro', '--out', str(ro)], capture_output=True, text=True)
        assert r.returncode == 2 and f'the output folder {ro} is not writable' in r.stderr and list(ro.iterdir()) == []
    finally:
        ro.chmod(stat.S_IRWXU)


def test_run_writes_whole_files_and_closes_its_figure(tmp_path):
    import matplotlib.pyplot as plt
    from adaptbook import cli
    before = len(plt.get_fignums())
    paths = cli.run_experiment('intro', 'quick', tmp_path, verbose=False)
    assert len(plt.get_fignums()) == before and all(p.exists() for p in paths.values())
    assert not [p for p in tmp_path.iterdir() if '.part' in p.name]


def test_a_resumed_run_all_reruns_what_its_arguments_require(tmp_path):
    "Results written by an earlier run are kept only if they match this call's mode, first seed, seeds and threads."
    from adaptbook import cli
    p = cli.run_experiment('intro', 'quick', tmp_path, verbose=False, threads=1)['json']
    prov = __import__('adaptbook').core.Results.from_json(p).meta['provenance']
    n = len(prov['seeds'])
    assert cli._fresh('intro', p, 'quick', None) and cli._fresh('intro', p, 'quick', n, 0, 1)
    assert not cli._fresh('intro', p, 'full', None)                  # another mode
    assert not cli._fresh('intro', p, 'quick', None, seed=5)         # another first seed
    assert not cli._fresh('intro', p, 'quick', n + 1)                # more seeds than written
    assert not cli._fresh('intro', p, 'quick', None, threads=2)      # another thread count
    assert not cli._fresh('intro', tmp_path / 'missing.json', 'quick', None)
