"""A program on a pseudo-terminal, driven as a person types and read as a person sees it (standard library only; every
wait is bounded). Used by the chat, progress and interrupt tests."""
import os
import pty
import re
import select
import signal
import time


class PtySession:
    """One process on a pseudo-terminal; `screen` is everything it has written (stdout and stderr)."""

    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(argv[0], argv)
        self.screen = ""
        self.pos = 0

    def _read(self, timeout):
        """Appends what arrives within `timeout` s; False once the process has closed the terminal."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        self.screen += data.decode("utf-8", "replace")
        return bool(data)

    def expect(self, pattern, timeout=60.0):
        """Reads until `pattern` (a regex) appears after what earlier expects consumed; returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.screen[self.pos:])
            if m:
                self.pos += m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}; screen:\n{self.screen[-2000:]}")
            if not self._read(min(left, 0.5)):
                raise AssertionError(f"the program ended while waiting for {pattern!r}; screen:\n{self.screen[-2000:]}")

    def wait_more(self, n=24, timeout=60.0):
        """Reads until at least n more bytes have arrived (output streaming), so that a key typed next lands while
        the output is being written, not before it starts."""
        start = len(self.screen)
        deadline = time.monotonic() + timeout
        while len(self.screen) - start < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no more output; screen:\n{self.screen[-2000:]}")
            self._read(min(left, 0.5))
        self.pos = len(self.screen)

    def type(self, text):
        os.write(self.fd, text.encode())

    def wait_exit(self, timeout=30.0, kill=True):
        """The exit status (130 for an interrupted exit). After `timeout` s: kills the process and fails, or with
        kill=False returns None and leaves it running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:  # drain, so the child never blocks on a full terminal
                self._read(0.1)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                try:
                    while self._read(0):
                        pass
                except OSError:
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        if not kill:
            return None
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"the program did not exit; screen:\n{self.screen[-2000:]}")

    def leave_with_ctrl_d(self, tries=5):
        """Types Ctrl-D until the program exits; returns its status. A line editor that is still redrawing its prompt
        (libedit switching the terminal mode flushes input typed meanwhile) may drop one."""
        for _ in range(tries):
            time.sleep(0.3)
            self.type("\x04")
            code = self.wait_exit(timeout=3, kill=False)
            if code is not None:
                return code
        return self.wait_exit(timeout=0)
