#!/usr/bin/python3
"""The python3-watchdog peer of benchmarks/directory_latency.

Usage: watchdog_created.py FOLDER

Watches FOLDER (not recursively) with watchdog's inotify Observer, as a
watchdog user would, and prints one line per file created in it: the file's
name and time.monotonic_ns() (CLOCK_MONOTONIC, the clock of the C++
benchmarks' steady_clock) taken in the on_created handler. Says "ready" on
stderr once the watch is set; runs until it is killed.
"""
import os
import sys
import time

from watchdog.events import FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver


class StampCreated(FileSystemEventHandler):
    """Prints "<name> <ns>" for every file created."""

    def on_created(self, event):
        if not event.is_directory:
            print(os.path.basename(event.src_path), time.monotonic_ns(), flush=True)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    observer = InotifyObserver()
    observer.schedule(StampCreated(), sys.argv[1], recursive=False)
    observer.start()
    print("ready", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
