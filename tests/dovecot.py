"""A real dovecot (Debian `dovecot-imapd`) on a free loopback port with a temporary Maildir.

Any user logs in with the password `secret`. Mail is put in place either over IMAP APPEND
or, much faster, by writing RFC 5322 files into the Maildir's `new/` folder (`deliver`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from channels.email.imap import utf7

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PASSWORD = "secret"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
{ssl}
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{tmp}/mail/%u
mail_fsync = never
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
{extra}
"""

NON_ROOT = """\
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    """One dovecot instance; `stop()` and `start()` again keep the port and the mail."""

    def __init__(
        self, root: Path, port: int | None = None, tls: bool = False, oauth_introspection: str | None = None
    ) -> None:
        self.root = root
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.tls_port = free_port() if tls else 0
        self.certificate = root / "cert.pem"
        self._process: subprocess.Popen[bytes] | None = None
        self._serial = itertools.count()
        if os.geteuid() == 0:
            self.user, self.group = "dovecot", "dovecot"
            extra = ""
        else:
            import grp
            import pwd

            self.user = pwd.getpwuid(os.geteuid()).pw_name
            self.group = grp.getgrgid(os.getegid()).gr_name
            extra = NON_ROOT.format(user=self.user, group=self.group)
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        ssl = "ssl = no"
        if tls:
            key = root / "key.pem"
            subprocess.run(
                [
                    *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
                    *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                    *("-keyout", str(key), "-out", str(self.certificate)),
                ],
                check=True,
                capture_output=True,
            )
            ssl = f"ssl = yes\nssl_cert = <{self.certificate}\nssl_key = <{key}"
        if oauth_introspection:
            extra += self._oauth(oauth_introspection)
        self.config = root / "dovecot.conf"
        self.config.write_text(
            CONFIG.format(
                tmp=root,
                password=PASSWORD,
                uid=self.user,
                gid=self.group,
                port=self.port,
                tls_port=self.tls_port,
                ssl=ssl,
                extra=extra,
            )
        )

    def _oauth(self, url: str) -> str:
        """XOAUTH2 logins, each token checked at `url` (RFC 7662 introspection, POST)."""
        ext = self.root / "oauth2.conf.ext"
        ext.write_text(
            f"introspection_mode = post\nintrospection_url = {url}\nforce_introspection = yes\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
        )
        return (
            "auth_mechanisms = plain login xoauth2\n"
            f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2\n  args = {ext}\n}}\n"
        )

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts connections."""
        self._own(self.root / "mail")
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGKILL with `kill`, dropping every connection at once)."""
        process, self._process = self._process, None
        if process is None:
            return
        if kill:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stderr:
            process.stderr.close()
        if kill:
            (self.root / "run" / "master.pid").unlink(missing_ok=True)

    def log(self) -> str:
        """The server's log so far."""
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def maildir(self, user: str, mailbox: str = "INBOX") -> Path:
        """The Maildir folder of a user's mailbox, created if missing."""
        base = self.root / "mail" / user
        folder = base if mailbox == "INBOX" else base / ("." + utf7.encode(mailbox).replace("/", "."))
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return folder

    def deliver(self, user: str, messages: Iterable[bytes], mailbox: str = "INBOX") -> int:
        """Write messages straight into the Maildir; return how many."""
        folder = self.maildir(user, mailbox)
        count = 0
        stamp = int(time.time())
        for raw in messages:
            name = f"{stamp}.M{next(self._serial)}P{os.getpid()}.omnihub-test"
            (folder / "tmp" / name).write_bytes(raw)
            (folder / "tmp" / name).rename(folder / "new" / name)
            count += 1
        self._own(self.root / "mail")
        return count

    def _own(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        for item in itertools.chain([path], path.rglob("*")):
            shutil.chown(item, self.user, self.group)


def dovecot_available() -> bool:
    """Whether the dovecot binary is installed."""
    return Path(DOVECOT).exists()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A running dovecot for one test.

    Its folder is not under pytest's temporary directory: running as root, dovecot reads
    mail as the `dovecot` user, and pytest keeps its base directory private (0700).
    """
    yield from _running(tls=False)


@pytest.fixture
def dovecot_tls() -> Iterator[Dovecot]:
    """A running dovecot that also offers implicit TLS on `tls_port` (self-signed `certificate`)."""
    yield from _running(tls=True)


def _running(tls: bool) -> Iterator[Dovecot]:
    from tests.conftest import unavailable

    if not dovecot_available():
        unavailable("dovecot (Debian package dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="omnihub-dovecot-"))
    root.chmod(0o711)
    server = Dovecot(root, tls=tls)
    try:
        server.start()
        yield server
    finally:
        server.stop(kill=True)
        shutil.rmtree(root, ignore_errors=True)
