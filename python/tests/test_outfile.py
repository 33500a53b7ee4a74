"""Path outputs appear only complete: no half-written file, under its name
or a hidden one, whatever ends the writer (kapsel._outfile).

Each test runs twice: on the unnamed file (Linux ``O_TMPFILE``) and on the
named fallback, forced by ``KAPSEL_TEST_NAMED_TEMPFILE=1``. The crash tests
run a child Python that writes and then waits on its standard input, and
SIGKILL it once it said it is mid-write: no timing involved.
"""

from __future__ import annotations

import gc
import io
import os
import signal
import subprocess
import sys
import time

import pytest

import kapsel
from conftest import pattern
from kapsel import _outfile


def _has_o_tmpfile(directory: str) -> bool:
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return False
    try:
        fd = os.open(directory, flag | os.O_WRONLY, 0o600)
    except OSError:
        return False
    os.close(fd)
    return os.path.exists("/proc/self/fd")


@pytest.fixture(params=["unnamed", "named"])
def how(request, monkeypatch, tmp_path) -> str:
    """Which kind of temporary file the outputs use (the child processes
    inherit the environment)."""
    if request.param == "unnamed":
        if not _has_o_tmpfile(str(tmp_path)):
            pytest.skip("no O_TMPFILE here")
        monkeypatch.delenv(_outfile.FORCE_NAMED_ENV, raising=False)
    else:
        monkeypatch.setenv(_outfile.FORCE_NAMED_ENV, "1")
    return request.param


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Boom(Exception):
    pass


def partials(directory) -> list:
    return [n for n in os.listdir(directory) if n.endswith(_outfile.PARTIAL_SUFFIX)]


# ---------------------------------------------------------------------------
# In process: success, exceptions, failures


def test_success_makes_exactly_the_target_with_its_contents_and_mode(alice, how, tmp_path):
    data = pattern(200_000)
    with kapsel.open(tmp_path / "out.kap", "wb", recipients=[alice.to_recipient()]) as f:
        f.write(data)
        names = os.listdir(tmp_path)
        if how == "unnamed":
            assert names == []  # nothing named while writing
        else:
            assert len(names) == 1 and names[0].startswith(".out.kap.")
            assert os.stat(tmp_path / names[0]).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["out.kap"]
    assert os.stat(tmp_path / "out.kap").st_mode & 0o777 == 0o666 & ~_umask()
    assert kapsel.decrypt_bytes((tmp_path / "out.kap").read_bytes(), alice) == data

    kapsel.decrypt(tmp_path / "out.kap", tmp_path / "plain", alice)
    (tmp_path / "src").write_bytes(data)
    kapsel.encrypt(tmp_path / "src", tmp_path / "again.kap", alice.to_recipient())
    assert sorted(os.listdir(tmp_path)) == ["again.kap", "out.kap", "plain", "src"]
    assert (tmp_path / "plain").read_bytes() == data
    assert kapsel.decrypt_bytes((tmp_path / "again.kap").read_bytes(), alice) == data
    for name in ("plain", "again.kap"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~_umask()


def test_a_replaced_file_keeps_its_mode_and_survives_failures(alice, bob, how, tmp_path):
    target = tmp_path / "out"
    target.write_bytes(b"old contents")
    os.chmod(target, 0o640)
    with pytest.raises(Boom):
        with kapsel.open(target, "wb", recipients=[alice.to_recipient()]) as f:
            f.write(pattern(100_000))
            raise Boom
    (tmp_path / "c.kap").write_bytes(kapsel.encrypt_bytes(b"new contents", alice.to_recipient()))
    with pytest.raises(kapsel.NoMatchingRecipientError):
        kapsel.decrypt(tmp_path / "c.kap", target, bob)
    assert target.read_bytes() == b"old contents"
    assert sorted(os.listdir(tmp_path)) == ["c.kap", "out"]

    kapsel.decrypt(tmp_path / "c.kap", target, alice)
    assert target.read_bytes() == b"new contents"
    assert os.stat(target).st_mode & 0o7777 == 0o640
    assert sorted(os.listdir(tmp_path)) == ["c.kap", "out"]


def test_an_exception_in_the_with_block_leaves_nothing(alice, how, tmp_path):
    with pytest.raises(Boom):
        with kapsel.open(tmp_path / "out.kap", "wb", recipients=[alice.to_recipient()]) as f:
            f.write(pattern(3 * 1024 * 1024))
            raise Boom
    assert os.listdir(tmp_path) == []


def test_abort_and_a_writer_dropped_unclosed_leave_nothing(alice, how, tmp_path):
    f = kapsel.open(tmp_path / "a.kap", "wb", recipients=[alice.to_recipient()])
    f.write(pattern(100_000))
    f.abort()
    f = kapsel.open(tmp_path / "b.kap", "wb", recipients=[alice.to_recipient()])
    f.write(pattern(100_000))
    del f
    gc.collect()
    assert os.listdir(tmp_path) == []


def test_failed_decrypt_and_encrypt_to_a_path_leave_nothing(alice, bob, how, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    ciphertext = bytearray(kapsel.encrypt_bytes(pattern(5 * 1024 * 1024), alice.to_recipient()))
    ciphertext[-100] ^= 1  # the final chunk fails, after megabytes of plaintext
    (src / "c.kap").write_bytes(bytes(ciphertext))
    with pytest.raises(kapsel.PayloadAuthenticationError):
        kapsel.decrypt(src / "c.kap", out / "plain", alice)
    with pytest.raises(kapsel.PayloadAuthenticationError):
        kapsel.decrypt(io.BytesIO(bytes(ciphertext)), out / "plain", alice)
    with pytest.raises(kapsel.NoMatchingRecipientError):
        kapsel.decrypt(src / "c.kap", out / "plain", bob)
    with pytest.raises(kapsel.KapselIOError):
        kapsel.encrypt(src / "missing", out / "c.kap", alice.to_recipient())
    with pytest.raises(TypeError):
        kapsel.encrypt(src / "c.kap", out / "c.kap", [42])
    assert os.listdir(out) == []


def test_xb_never_replaces_an_existing_file(alice, how, tmp_path):
    target = tmp_path / "out.kap"
    target.write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        kapsel.open(target, "xb", recipients=[alice.to_recipient()])
    target.unlink()
    f = kapsel.open(target, "xb", recipients=[alice.to_recipient()])
    f.write(b"data")
    target.write_bytes(b"taken meanwhile")
    with pytest.raises(FileExistsError):
        f.close()
    assert target.read_bytes() == b"taken meanwhile"
    assert os.listdir(tmp_path) == ["out.kap"]


def test_a_symbolic_link_is_followed(alice, how, tmp_path):
    (tmp_path / "real").write_bytes(b"old")
    os.symlink("real", tmp_path / "link")
    (tmp_path / "c.kap").write_bytes(kapsel.encrypt_bytes(b"new", alice.to_recipient()))
    kapsel.decrypt(tmp_path / "c.kap", tmp_path / "link", alice)
    assert os.path.islink(tmp_path / "link")
    assert (tmp_path / "real").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["c.kap", "link", "real"]


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_devices_and_fifos_are_written_in_place(alice, how, tmp_path):
    (tmp_path / "c.kap").write_bytes(kapsel.encrypt_bytes(b"to nowhere", alice.to_recipient()))
    assert kapsel.decrypt(tmp_path / "c.kap", "/dev/null", alice).plaintext_len == 10
    with kapsel.open("/dev/null", "wb", recipients=[alice.to_recipient()]) as f:
        f.write(b"x")
    os.mkfifo(tmp_path / "fifo")
    reader = subprocess.Popen(["cat", str(tmp_path / "fifo")], stdout=subprocess.PIPE)
    kapsel.decrypt(tmp_path / "c.kap", tmp_path / "fifo", alice)
    assert reader.communicate()[0] == b"to nowhere"
    assert sorted(os.listdir(tmp_path)) == ["c.kap", "fifo"]


def test_a_read_only_file_is_not_replaced(alice, tmp_path, monkeypatch):
    target = tmp_path / "ro.kap"
    target.write_bytes(b"keep")
    os.chmod(target, 0o444)
    if os.geteuid() == 0:  # root may write any file: pretend otherwise
        monkeypatch.setattr(_outfile.os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError):
        kapsel.open(target, "wb", recipients=[alice.to_recipient()])
    assert target.read_bytes() == b"keep"
    assert os.listdir(tmp_path) == ["ro.kap"]


def test_a_directory_is_refused(alice, tmp_path):
    with pytest.raises(IsADirectoryError):
        kapsel.open(tmp_path, "wb", recipients=[alice.to_recipient()])


# ---------------------------------------------------------------------------
# A crashing machine: SIGKILL mid-write

WRITER = """
import sys, kapsel
me = kapsel.Recipient.from_string(sys.argv[2])
w = kapsel.open(sys.argv[1], "wb", recipients=[me])
block = bytes(range(256)) * 4096
for _ in range(16):
    w.write(block)  # 16 MiB: most of it is in the file
print("writing", flush=True)
sys.stdin.read()  # until killed
"""

DECRYPTER = """
import io, sys, kapsel
me = kapsel.Identity.from_string(sys.stdin.readline().strip())
data = open(sys.argv[1], "rb").read()

class Stalling(io.RawIOBase):
    # Hands out the ciphertext, and stops for good after 8 MiB.
    pos = 0
    def readable(self):
        return True
    def readinto(self, b):
        limit = 8 << 20
        if self.pos >= limit:
            print("writing", flush=True)
            sys.stdin.read()  # until killed
        n = min(len(b), len(data) - self.pos, limit - self.pos)
        b[:n] = data[self.pos : self.pos + n]
        self.pos += n
        return n

kapsel.decrypt(Stalling(), sys.argv[2], me)
"""

ENCRYPTER = """
import sys, kapsel
kapsel.encrypt(sys.argv[1], sys.argv[2], kapsel.Recipient.from_string(sys.argv[3]))
"""


def _start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )


def _open_outputs(pid: int, directory) -> list:
    """(link, size) of the files the process has open in `directory`."""
    prefix = os.fspath(directory) + os.sep
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            size = os.stat(f"/proc/{pid}/fd/{fd}").st_size
        except OSError:
            continue
        if link.startswith(prefix):
            found.append((link, size))
    return found


def _kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    child.stdin.close()
    child.stdout.close()


def _assert_mid_write(child, directory, how: str) -> None:
    assert child.stdout.readline() == b"writing\n", "the child failed before writing"
    outputs = _open_outputs(child.pid, directory)
    assert len(outputs) == 1 and outputs[0][1] > 1 << 20, outputs
    if how == "unnamed":
        assert outputs[0][0].endswith("(deleted)")
        assert partials(directory) == []
    else:
        assert len(partials(directory)) == 1


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_sigkill_mid_write_leaves_no_entry(alice, how, existing, tmp_path):
    target = tmp_path / "out.kap"
    if existing:
        target.write_bytes(b"old contents")
    before = sorted(os.listdir(tmp_path))
    child = _start(WRITER, str(target), str(alice.to_recipient()))
    try:
        _assert_mid_write(child, tmp_path, how)
    finally:
        _kill(child)
    left = sorted(os.listdir(tmp_path))
    if how == "unnamed":
        assert left == before
        if existing:
            assert target.read_bytes() == b"old contents"
    else:
        # The fallback's limit: a SIGKILL leaves the hidden file, which the
        # next writer into the directory removes once it is stale.
        assert [n for n in left if n not in before] == partials(tmp_path)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_sigkill_mid_decrypt_to_a_path_leaves_no_plaintext(alice, how, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (src / "c.kap").write_bytes(kapsel.encrypt_bytes(pattern(12 * 1024 * 1024), alice.to_recipient()))
    child = _start(DECRYPTER, str(src / "c.kap"), str(out / "plain"))
    try:
        child.stdin.write(alice.secret_string().encode() + b"\n")
        child.stdin.flush()
        _assert_mid_write(child, out, how)
    finally:
        _kill(child)
    if how == "unnamed":
        assert os.listdir(out) == []
    else:
        assert os.listdir(out) == partials(out)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_sigkill_mid_encrypt_path_to_path_leaves_no_entry(alice, how, tmp_path):
    """Path to path runs in Rust: fed through a FIFO, killed once the output
    grew (progress, not time, decides)."""
    src = tmp_path / "in"
    src.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(src / "fifo")
    child = _start(ENCRYPTER, str(src / "fifo"), str(out / "c.kap"), str(alice.to_recipient()))
    try:
        block = pattern(1 << 20)
        with open(src / "fifo", "wb") as feed:  # returns once the child opened it
            for _ in range(512):
                feed.write(block)
                feed.flush()
                outputs = _open_outputs(child.pid, out)
                if outputs and max(size for _, size in outputs) > 0:
                    break
            # Python's descriptor of the file, and the one Rust opened.
            assert len({link for link, _ in outputs}) == 1, outputs
            assert max(size for _, size in outputs) > 0, outputs
            if how == "unnamed":
                assert os.listdir(out) == []
            _kill(child)
    finally:
        if child.returncode is None:
            _kill(child)
    if how == "unnamed":
        assert os.listdir(out) == []
    else:
        assert os.listdir(out) == partials(out)


# ---------------------------------------------------------------------------
# The named fallback's leftovers


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", ""])
    p.wait()
    return p.pid


def test_stale_named_leftovers_are_removed_by_the_next_writer(alice, tmp_path, monkeypatch):
    monkeypatch.setenv(_outfile.FORCE_NAMED_ENV, "1")
    dead = _dead_pid()
    old = time.time() - 2 * _outfile.STALE_AFTER
    names = {
        "stale": f".out.kap.{dead}.AbC123xy{_outfile.PARTIAL_SUFFIX}",
        "young": f".young.{dead}.AbC123xy{_outfile.PARTIAL_SUFFIX}",
        "alive": f".alive.{os.getppid()}.AbC123xy{_outfile.PARTIAL_SUFFIX}",
        "other": "not.1.ours.kapsel-tmp",
    }
    for key, name in names.items():
        (tmp_path / name).write_bytes(b"partial")
        if key != "young":
            os.utime(tmp_path / name, (old, old))
    with kapsel.open(tmp_path / "new.kap", "wb", recipients=[alice.to_recipient()]) as f:
        f.write(b"x")
    left = set(os.listdir(tmp_path))
    assert names["stale"] not in left
    assert {names["young"], names["alive"], names["other"], "new.kap"} <= left
    assert len(left) == 4


def test_partial_names_give_their_pid():
    assert _outfile._partial_file_pid(".out.bin.1234.AbC123.kapsel-partial") == 1234
    assert _outfile._partial_file_pid(".x.99.q.kapsel-partial") == 99
    assert _outfile._partial_file_pid(".x.kapsel-partial") is None
    assert _outfile._partial_file_pid("x.1.2.kapsel-partial") is None


def test_the_unnamed_file_falls_back_where_the_directory_refuses_it(alice, tmp_path, monkeypatch):
    """A file system without O_TMPFILE (EOPNOTSUPP) takes the named path."""
    monkeypatch.delenv(_outfile.FORCE_NAMED_ENV, raising=False)
    real_open = os.open

    def no_tmpfile(path, flags, *args, **kwargs):
        if getattr(os, "O_TMPFILE", 0) and flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(95, "Operation not supported")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(_outfile.os, "open", no_tmpfile)
    with pytest.raises(Boom):
        with kapsel.open(tmp_path / "out.kap", "wb", recipients=[alice.to_recipient()]) as f:
            f.write(b"data")
            assert len(partials(tmp_path)) == 1
            raise Boom
    assert os.listdir(tmp_path) == []
    with kapsel.open(tmp_path / "out.kap", "wb", recipients=[alice.to_recipient()]) as f:
        f.write(b"data")
    assert os.listdir(tmp_path) == ["out.kap"]


FSSPEC_WRITER = """
import sys, fsspec, kapsel
me = kapsel.Recipient.from_string(sys.argv[2])
w = fsspec.open("kapsel::file://" + sys.argv[1], "wb", kapsel={"recipients": [me]}).open()
block = bytes(range(256)) * 4096
for _ in range(16):
    w.write(block)
print("writing", flush=True)
sys.stdin.read()  # until killed
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_sigkill_mid_write_through_fsspec_on_local_files(alice, how, tmp_path):
    pytest.importorskip("fsspec")
    child = _start(FSSPEC_WRITER, str(tmp_path / "out.kap"), str(alice.to_recipient()))
    try:
        _assert_mid_write(child, tmp_path, how)
    finally:
        _kill(child)
    if how == "unnamed":
        assert os.listdir(tmp_path) == []
    else:
        assert os.listdir(tmp_path) == partials(tmp_path)


def test_fsspec_local_writer_appears_only_complete(alice, how, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    url = f"kapsel::file://{tmp_path}/out.kap"
    with pytest.raises(Boom):
        with fsspec.open(url, "wb", kapsel={"recipients": [alice.to_recipient()]}) as f:
            f.write(b"x" * 100_000)
            raise Boom
    assert os.listdir(tmp_path) == []
    with fsspec.open(url, "wb", kapsel={"recipients": [alice.to_recipient()]}) as f:
        f.write(b"x" * 100_000)
        if how == "unnamed":
            assert os.listdir(tmp_path) == []
    assert os.listdir(tmp_path) == ["out.kap"]
    assert kapsel.decrypt_bytes((tmp_path / "out.kap").read_bytes(), alice) == b"x" * 100_000
