"""``python -m fingerprints verify`` checks every rule file; ``python -m fingerprints match KEY``
reads one observed string per line on stdin (a line holding a JSON string literal is decoded
first, so banners with line breaks fit) and prints one JSON identity per line, ``{}`` where
nothing matched.

Example: printf 'SSH-2.0-dropbear_2019.78\\n' | python -m fingerprints match ssh.banner
Example: python -m fingerprints verify --recog ../shared/fingerprint-db/recog
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fingerprints.classify import Observation, classify
from fingerprints.rules import verify, vocabulary

MAX_LINE_CHARS = 65_536  # a longer input line is cut: a rule reads at most 4096 characters


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m fingerprints", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check every rule against its examples",
                           epilog="Example: python -m fingerprints verify")
    check.add_argument("files", nargs="*", type=Path, help="rule files (default: the bundled)")
    check.add_argument("--recog", type=Path, metavar="DIR",
                       help="instead: run every example of a recog release through the loader "
                            "and report per file how many yield the parameters recog states")
    check.add_argument("--failures", action="store_true", help="with --recog: list each failure")
    matcher = sub.add_parser("match", help="identify strings read from stdin",
                             epilog="Example: echo 'App-webs/' | python -m fingerprints match "
                                    "http.server")
    matcher.add_argument("key", help="match key, e.g. http.server")
    matcher.add_argument("--recog", type=Path, metavar="DIR",
                         help="use the recog release in DIR as it lies, not the one imported "
                              "(default: the store's, if any)")
    accuracy = sub.add_parser(
        "accuracy", help="the classifier against labelled corpora",
        description="Score the classifier against labelled cases: a TOML corpus, a "
                    "Fingerbank DHCP folder, or a recog release (its examples, scored with "
                    "recog unloaded). Reported per source, per device type and per half.",
        epilog="Example: python -m fingerprints accuracy tests/fingerprints/corpus.toml "
               "tests/fingerprints/public/fingerbank ../shared/fingerprint-db/recog")
    accuracy.add_argument("corpus", type=Path, nargs="+")
    accuracy.add_argument("--recog", type=Path, metavar="DIR",
                          help="score the TOML and Fingerbank corpora with the recog release "
                               "in DIR loaded (a recog corpus is scored without it always)")
    accuracy.add_argument("--misses", action="store_true",
                          help="list what it got wrong in the dev half (the test half is "
                               "never listed)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "verify":
        if args.recog is not None:
            return verify_recog(args.recog, show_failures=args.failures)
        errors = verify(args.files or None)
        for error in errors:
            print(error, file=sys.stderr)
        print(f"{len(errors)} problem(s)" if errors else "all rules verified")
        return 1 if errors else 0
    if args.recog is not None:
        from fingerprints.databases import DatabaseError, use_recog

        try:
            use_recog(args.recog)
        except DatabaseError as exc:
            print(f"python -m fingerprints {args.command}: {exc}", file=sys.stderr)
            return 2
    return accuracy(args) if args.command == "accuracy" else match_lines(args.key)


def accuracy(args: argparse.Namespace) -> int:
    from fingerprints.accuracy import render, report

    print(f"python -m fingerprints accuracy: {rule_sources()}", file=sys.stderr)
    try:
        result = report(*args.corpus)
    except (ValueError, OSError) as exc:
        print(f"python -m fingerprints accuracy: {exc}", file=sys.stderr)
        return 2
    print("Per source\n\n" + render(result.by_source, row_name="source"))
    print("\nPer device type (the label)\n\n" + render(result.by_type, row_name="type"))
    print("\nPer half\n\n" + render(result.by_half, row_name="half"))
    if result.excluded:
        print("\nLeft out, being a built-in rule's own example: " + ", ".join(
            f"{corpus} {count}" for corpus, count in sorted(result.excluded.items())))
    if args.misses:
        print("\n".join(result.misses))
    return 0


def match_lines(key: str) -> int:
    if key not in vocabulary().keys:
        print(f"unknown match key {key!r}; one of: {', '.join(sorted(vocabulary().keys))}",
              file=sys.stderr)
        return 2
    print(f"python -m fingerprints match: {rule_sources()}", file=sys.stderr)
    for line in sys.stdin:
        text = line.rstrip("\n")[:MAX_LINE_CHARS]
        if text.startswith('"'):
            try:
                decoded = json.loads(text)
                text = decoded if isinstance(decoded, str) else text
            except ValueError:
                pass
        identity = classify([Observation(key=key, value=text)])
        print(json.dumps(identity.to_dict(), ensure_ascii=False))
    return 0


def rule_sources() -> str:
    """Which rules answer, said once on stderr: without recog the built-in rules type about
    half of the banners recog types (its own examples: 55% against 99.7%), and such a run
    should not look like one with it."""
    from fingerprints.classify import load_rules
    from fingerprints.databases import installed, store

    rules = load_rules()
    found = installed()
    if not found:
        return (f"the built-in rules only ({rules}); no recog release in {store()} "
                "(--recog DIR uses one as it lies; 'netvagt-central fingerprints import DIR' "
                "installs one)")
    return f"{rules} rules: built-in and " + ", ".join(
        f"{d.name} {d.release} ({d.path})" for d in found)


def verify_recog(directory: Path, *, show_failures: bool = False) -> int:
    """Exit 0 when every example Python's ``re`` can express yields what recog states."""
    from fingerprints.recog import RecogError
    from fingerprints.recog import verify as verify_release

    try:
        reports = verify_release(directory)
    except (RecogError, OSError) as exc:
        print(f"python -m fingerprints: {exc}", file=sys.stderr)
        return 2
    width = max(len(Path(r.path).name) for r in reports)
    for report in reports:
        rate = 100.0 * report.passed / report.examples if report.examples else 100.0
        used = report.key or "(no sensor key)"
        print(f"{Path(report.path).name:<{width}}  {report.passed:>5}/{report.examples:<5} "
              f"{rate:6.2f}%  {used}")
        for failure in report.failures if show_failures else report.failures[:3]:
            print(f"    {failure}")
        if not show_failures and len(report.failures) > 3:
            print(f"    ... {len(report.failures) - 3} more (--failures)")
    total = sum(r.examples for r in reports)
    passed = sum(r.passed for r in reports)
    unusable = sum(1 for r in reports for f in r.failures if ": regex: " in f)
    print(f"recog: {passed} of {total} examples ({100.0 * passed / max(total, 1):.2f}%) "
          f"in {len(reports)} files; {unusable} fingerprint(s) Python's re cannot express")
    return 0 if passed == total and not unusable else 1


if __name__ == "__main__":
    sys.exit(main())
