#!/usr/bin/python3
"""Draws latency CDFs from the samples the latency benchmarks write as CSV.

Usage: plot_latency.py CSV_DIR OUT_DIR

Reads what `directory_latency --csv CSV_DIR` and `wakeup_latency --csv
CSV_DIR` wrote (a "sample,latency_us" header, a line per sample) and writes,
for each benchmark whose files are there, an SVG to OUT_DIR:
  directory-latency-cdf.svg  file created -> seen: storewatch's directory
                             source, inotifywait, python3-watchdog
  wakeup-latency-cdf.svg     append in one process -> seen in another:
                             storewatch's event_listener, inotifywait
Each curve is the fraction of samples at or below a latency (log scale), the
median marked. Needs python3-matplotlib (Debian).
"""
import csv
import os
import statistics
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

# The figures: file name, title, and the curves (CSV name, label).
FIGURES = [
    ("directory-latency-cdf.svg", "File created \u2192 watcher's callback (directory_latency)", [
        ("directory_inotifywait", "inotifywait -m (baseline)"),
        ("directory_watchdog", "python3-watchdog InotifyObserver"),
        ("directory_storewatch_settle0_sync_after", "storewatch directory source, settle 0, synced after delivery"),
        ("directory_storewatch_settle0", "storewatch directory source, settle 0"),
        ("directory_storewatch", "storewatch directory source, defaults (settle 50 ms)"),
    ]),
    ("wakeup-latency-cdf.svg", "Append in one process \u2192 seen in another (wakeup_latency)", [
        ("wakeup_inotifywait", "inotifywait -m on the journal (baseline)"),
        ("wakeup_storewatch", "storewatch event_listener"),
    ]),
]


def read_samples(path):
    """The latencies (us) in a benchmark's CSV file."""
    with open(path, newline="") as f:
        return [float(row["latency_us"]) for row in csv.DictReader(f)]


def plot(csv_dir, out_path, title, curves):
    """One CDF figure; False when none of its CSV files is there."""
    found = [(label, read_samples(os.path.join(csv_dir, name + ".csv")))
             for name, label in curves if os.path.exists(os.path.join(csv_dir, name + ".csv"))]
    if not found:
        return False
    figure, axes = plt.subplots(figsize=(8, 5.5))
    for label, samples in found:
        samples.sort()
        fractions = [(i + 1) / len(samples) for i in range(len(samples))]
        median = statistics.median(samples)
        line, = axes.step(samples, fractions, where="post",
                          label=f"{label}: median {median:,.0f} \u00b5s, n={len(samples)}")
        axes.plot([median], [0.5], "o", color=line.get_color())
    axes.set_xscale("log")
    axes.set_xlabel("latency (\u00b5s, log scale)")
    axes.set_ylabel("fraction of samples \u2264 latency")
    axes.set_ylim(0, 1.01)
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize="small")  # below the axes
    figure.tight_layout()
    figure.savefig(out_path, metadata={"Date": None})
    plt.close(figure)
    return True


def main():
    if len(sys.argv) != 3:
        print("usage: plot_latency.py CSV_DIR OUT_DIR", file=sys.stderr)
        return 2
    csv_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    matplotlib.rcParams["svg.hashsalt"] = "storewatch"  # the same samples give the same file
    wrote = 0
    for file_name, title, curves in FIGURES:
        out_path = os.path.join(out_dir, file_name)
        if plot(csv_dir, out_path, title, curves):
            print(out_path)
            wrote += 1
    if wrote == 0:
        print(f"plot_latency.py: no latency CSV files in {csv_dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
