"""Fetch a file over HTTP(S) so that nothing partial or unverified is ever left at its destination.

The body streams to a temporary file beside ``dest`` (same folder, so the final move is atomic); it is
checked (length, sha256 or hash prefix, then the caller's ``check``), fsynced and only then moved onto
``dest``. Any failure removes the temporary file and raises a one-line :class:`DownloadError`.

``GANZOO_MIRROR=http://host/prefix`` replaces scheme and host of every URL (air-gapped mirrors, tests);
``GANZOO_OFFLINE=1`` (or :func:`set_offline`) forbids fetching.
"""
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT_S = 60
_offline_override = None


class DownloadError(OSError):
    pass


def set_offline(flag):
    """Forbid (True) or allow (False) fetching in this process, whatever ``GANZOO_OFFLINE`` says;
    ``None`` goes back to the variable."""
    global _offline_override
    _offline_override = None if flag is None else bool(flag)


def offline():
    if _offline_override is not None:
        return _offline_override
    return os.environ.get("GANZOO_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def mirrored(url):
    """``url`` with scheme and host replaced by ``$GANZOO_MIRROR`` (whose path is prepended), if set."""
    mirror = os.environ.get("GANZOO_MIRROR", "").strip()
    if not mirror:
        return url
    base = urllib.parse.urlsplit(mirror)
    if not base.scheme or not base.netloc:
        raise DownloadError(f"GANZOO_MIRROR={mirror!r} is not a URL like http://host/prefix")
    parts = urllib.parse.urlsplit(url)
    path = base.path.rstrip("/") + parts.path
    return urllib.parse.urlunsplit((base.scheme, base.netloc, path, parts.query, ""))


def download(url, dest, sha256=None, hash_prefix=None, progress=True, what=None, check=None):
    """Download ``url`` (through ``$GANZOO_MIRROR``) to ``dest``, verified and atomic; return ``dest``.

    ``check(tmp_path)``, called before the move, raises ``ValueError`` when the file is not what was asked
    for. ``progress``: a tqdm bar on stderr when it is a terminal.
    """
    url = mirrored(url)
    name = what or os.path.basename(dest)
    if offline():
        raise DownloadError(f"{name}: offline (GANZOO_OFFLINE), not fetching {url}: put the file at {dest}")
    folder = os.path.dirname(os.path.abspath(dest))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(dest)}.", suffix=".part")
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": "ganzoo"})
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            received = 0
            with _bar(total, name, progress) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    f.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
            if total is not None and received != total:
                raise DownloadError(f"{name}: connection dropped after {received} of {total} bytes from {url}")
            f.flush()
            os.fsync(f.fileno())
        actual = digest.hexdigest()
        if sha256 and actual != sha256.lower():
            raise DownloadError(f"{name}: sha256 {actual} of the file from {url} is not the expected {sha256}")
        if hash_prefix and not actual.startswith(hash_prefix.lower()):
            raise DownloadError(f"{name}: sha256 {actual[:12]}... of the file from {url} does not start with "
                                f"the expected {hash_prefix}")
        if check is not None:
            try:
                check(tmp)
            except ValueError as err:
                raise DownloadError(f"{name}: the file from {url} failed verification: {err}") from None
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a cache is usually shared
        os.replace(tmp, dest)
        return dest
    except DownloadError:
        raise
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{name}: HTTP {err.code} {err.reason} from {url}") from None
    except urllib.error.URLError as err:
        raise DownloadError(f"{name}: cannot reach {url} ({err.reason})") from None
    except OSError as err:  # reset or timed-out connection, full disk, unwritable folder
        raise DownloadError(f"{name}: download from {url} failed ({type(err).__name__}: {err})") from None
    except http.client.HTTPException as err:  # IncompleteRead, a malformed response (not OSErrors)
        raise DownloadError(f"{name}: connection to {url} failed ({type(err).__name__})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _bar(total, name, progress):
    from tqdm import tqdm
    return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                disable=None if progress else True, leave=False)
