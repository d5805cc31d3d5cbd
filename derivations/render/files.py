"""Output files written whole or not at all: a temporary file beside the target, then
``os.replace``.  An interrupted or failed write leaves the target as it was."""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from tracegrad.errors import UsageError


@contextmanager
def replacing(path):
    """Yields a temporary path in the directory of ``path``; on success it becomes ``path``."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.close(fd)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())     # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text):
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
