"""Fetch a file over HTTP(S) so that nothing partial or unverified is ever left at its destination.

The body streams to a temporary file beside ``dest``; it is checked (length, sha256 or hash prefix),
fsynced and only then moved onto ``dest``. Any failure removes the temporary file and raises a one-line
:class:`DownloadError`.

``GANZOO_MIRROR=http://host/prefix`` replaces scheme and host of every URL (air-gapped mirrors, tests);
``GANZOO_OFFLINE=1`` (or :func:`set_offline`) forbids fetching.
"""
import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request

_offline_override = None


class DownloadError(OSError):
    pass


def set_offline(flag):
    """Forbid (True) or allow (False) fetching in this process, whatever ``GANZOO_OFFLINE`` says."""
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
    parts = urllib.parse.urlsplit(url)
    path = base.path.rstrip("/") + parts.path
    return urllib.parse.urlunsplit((base.scheme, base.netloc, path, parts.query, ""))


def download(url, dest, sha256=None, hash_prefix=None, progress=True, what=None):
    """Download ``url`` to ``dest`` (verified, atomic) and return ``dest``."""
    url = mirrored(url)
    name = what or os.path.basename(dest)
    if offline():
        raise DownloadError(f"{name}: offline (GANZOO_OFFLINE), not fetching {url}: put the file at {dest}")
    folder = os.path.dirname(os.path.abspath(dest))
    tmp = f"{dest}.part{os.getpid()}"
    try:
        os.makedirs(folder, exist_ok=True)
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=60) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            with open(tmp, "wb") as f, _bar(total, name, progress) as bar:
                received = 0
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
            raise DownloadError(f"{name}: sha256 {actual} from {url} does not match the expected {sha256}")
        if hash_prefix and not actual.startswith(hash_prefix.lower()):
            raise DownloadError(f"{name}: sha256 {actual[:len(hash_prefix)]}... from {url} does not match "
                                f"the expected prefix {hash_prefix}")
        os.replace(tmp, dest)
        return dest
    except DownloadError:
        raise
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{name}: HTTP {err.code} {err.reason} from {url}") from None
    except urllib.error.URLError as err:
        raise DownloadError(f"{name}: cannot reach {url} ({err.reason})") from None
    except (OSError, EOFError) as err:  # dropped connection (IncompleteRead is not an OSError), full disk
        raise DownloadError(f"{name}: download from {url} failed ({type(err).__name__}: {err})") from None
    except Exception as err:
        import http.client
        if isinstance(err, http.client.HTTPException):
            raise DownloadError(f"{name}: connection to {url} failed ({type(err).__name__})") from None
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _bar(total, name, progress):
    from tqdm import tqdm
    return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress,
                leave=False)
