#!/usr/bin/env python3
"""The cost model of docs/cost-model.md: requests per second and dollars per
30-day month for N listeners following one bucket, from the request counts
the benchmarks measured and AWS's list prices. Prints the doc's tables.

    benchmarks/cost_model.py                  # the doc's scenario
    benchmarks/cost_model.py --listeners 1000 --events-per-day 20

Every input is below with where it comes from; change one and run again to
regenerate the tables (docs/cost-model.md says which figures are measured,
with the command, and which prices could not be confirmed).
"""
import argparse

# ---- measured (docs/cost-model.md, "Inputs": command, date, machine) ----
LIST_PER_IDLE_POLL = 1.00       # s3_latency / s3_catchup: idle polls, LIST per poll (GET 0)
GET_PER_EVENT = 1.00            # s3_latency: GETs per event, each listener (busy polls)
PUT_PER_EVENT_RECIPIENT = 1.00  # s3_catchup setup: PUTs per publish to one recipient
LIST_PER_HINT = 1.00            # s3_latency hints 100: hinted source's LISTs per event, its 60 s polls included
CATCHUP_GET_PER_1000 = 1.00     # s3_catchup 3000 all / 20000 compacted: GETs per 1,000 compacted events
CATCHUP_LIST_PER_1000 = 1.00    # the same: LISTs per 1,000 compacted events

# ---- prices, us-east-1, USD (docs/cost-model.md, "Prices": where each is documented) ----
S3_LIST = 0.005 / 1000          # LIST (and PUT, COPY, POST) per request
S3_PUT = 0.005 / 1000
S3_GET = 0.0004 / 1000          # GET (and HEAD, SELECT) per request
SQS_REQUEST = 0.40 / 1e6        # standard queue, per request (64 KB chunk), after 1 M free a month
SNS_PUBLISH = 0.50 / 1e6        # standard topic, per publish (64 KB chunk)
SNS_TO_SQS_DELIVERY = 0.0       # not confirmed from a stored page: see the doc
SQS_LONG_POLL_S = 20            # ReceiveMessage's longest WaitTimeSeconds
REDIS_NODE_HOUR = 0.017         # cache.t3.micro on demand (third-party listing; see the doc)

MONTH_S = 30 * 86400
HOURS_MONTH = 30 * 24


def scenarios(listeners, events_per_day):
    """(name, interval s or None, rows): each row (what, requests per month, price each)."""
    events = listeners * events_per_day * 30  # deliveries a month: one per event per recipient
    writes = [("S3 PUT, writers (1 per event per recipient)", events * PUT_PER_EVENT_RECIPIENT, S3_PUT)]
    out = []
    # (poller's interval, interval while hints are live: hinted_poll_interval, or None without hints)
    for interval, live in ((1, None), (5, None), (5, 5), (5, 60), (5, 300)):
        polls = listeners * MONTH_S / (live or interval)
        rows = [("S3 LIST, interval polls", polls * LIST_PER_IDLE_POLL, S3_LIST)]
        if live:
            rows.append(("S3 LIST, one poll per hint", events * LIST_PER_HINT, S3_LIST))
        rows.append(("S3 GET, one per event per listener", events * GET_PER_EVENT, S3_GET))
        rows += writes
        if live:
            rows.append(("Redis node (PUBLISH per event per recipient: no request charge)",
                         None, REDIS_NODE_HOUR * HOURS_MONTH))
        if live is None:
            name = "storewatch, poll every %d s" % interval
        elif live == interval:
            name = "storewatch, poll every %d s, Redis hints, hinted_poll_interval 0" % interval
        else:
            name = "storewatch, poll every %d s, Redis hints, every %d s while live%s" % (
                interval, live, " (the default)" if live == 60 else "")
        out.append((name, live or interval, rows))
    receives = listeners * MONTH_S / SQS_LONG_POLL_S
    out.append(("S3 event notifications -> SNS -> one SQS queue per listener", None, [
        ("SQS ReceiveMessage, idle long polls (20 s)", receives, SQS_REQUEST),
        ("SQS ReceiveMessage + DeleteMessage per event per listener", events * 2, SQS_REQUEST),
        ("SNS publish, one per object created", events, SNS_PUBLISH),
        ("SNS deliveries to SQS", events, SNS_TO_SQS_DELIVERY),
        ("S3 GET, the record the notification names", events * GET_PER_EVENT, S3_GET),
    ] + writes))
    return events, out


def money(x):
    return "$%s" % format(round(x, 2), ",.2f")


def count(x):
    return format(round(x), ",")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=10_000)
    parser.add_argument("--events-per-day", type=float, default=100, help="events each listener receives a day")
    args = parser.parse_args()
    events, table = scenarios(args.listeners, args.events_per_day)
    print("%s listeners, %s events a day each: %s deliveries a 30-day month\n"
          % (count(args.listeners), format(args.events_per_day, "g"), count(events)))
    print("| setup | requests/s (S3 LIST) | requests a month | dollars a month |")
    print("| --- | --- | --- | --- |")
    for name, interval, rows in table:
        requests = sum(r for _, r, _ in rows if r is not None)
        dollars = sum(p if r is None else r * p for _, r, p in rows)
        lists = sum(r for what, r, _ in rows if r is not None and what.startswith("S3 LIST"))
        print("| %s | %s (%s) | %s | %s |" % (name, format(requests / MONTH_S, ",.0f"), format(lists / MONTH_S, ",.0f"),
                                            count(requests), money(dollars)))
    print("\nBy line (prices per 1,000 requests):\n")
    for name, interval, rows in table:
        print("%s:\n" % name)
        print("| what | requests a month | price per 1,000 | dollars a month |")
        print("| --- | --- | --- | --- |")
        for what, requests, price in rows:
            if requests is None:
                print("| %s | | $%g an hour x %d h | %s |" % (what, REDIS_NODE_HOUR, HOURS_MONTH, money(price)))
            else:
                print("| %s | %s | $%g | %s |" % (what, count(requests), price * 1000, money(requests * price)))
        print()
    # The interval at which polling with hints costs what the notifications do.
    notified = sum(p if r is None else r * p for _, r, p in table[-1][2])
    hinted = next(rows for name, _, rows in table if "Redis hints" in name)
    hinted_fixed = sum(p if r is None else r * p for what, r, p in hinted if what != "S3 LIST, interval polls")
    if notified > hinted_fixed:
        even = args.listeners * MONTH_S * LIST_PER_IDLE_POLL * S3_LIST / (notified - hinted_fixed)
        print("Polling with hints costs what the notifications do at an interval of %.0f s\n" % even)
    per_1000 = CATCHUP_GET_PER_1000 * S3_GET + CATCHUP_LIST_PER_1000 * S3_LIST
    print("Catching up on 1,000 compacted events: %.2f GET + %.2f LIST = $%.7f (uncompacted: 1,000 GET = $%.4f)"
          % (CATCHUP_GET_PER_1000, CATCHUP_LIST_PER_1000, per_1000, 1000 * S3_GET))


if __name__ == "__main__":
    main()
