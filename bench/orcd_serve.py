"""Starts `orcd serve --device cpu` on a free port for the load scripts in this folder and returns (process, port)
once its ready line names the port. The stderr reader keeps draining, so the worker never blocks on a full pipe."""
import re
import subprocess
import sys
import threading


def start_serve(orcd, model, *extra, timeout=120):
    proc = subprocess.Popen([orcd, "serve", "-m", model, "--device", "cpu", "--port", "0", "-t", "1", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port, ready = [], threading.Event()

    def pump():
        for raw in proc.stderr:
            m = re.search(rb"ready .*address=http://127\.0\.0\.1:(\d+)", raw)
            if m:
                port.append(int(m.group(1)))
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout) or not port:
        proc.kill()
        sys.exit("orcd serve did not start")
    return proc, port[0]
