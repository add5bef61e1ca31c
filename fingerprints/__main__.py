"""``python -m fingerprints verify`` checks every rule file; ``python -m fingerprints match KEY``
reads one observed string per line on stdin (a line holding a JSON string literal is decoded
first, so banners with line breaks fit) and prints one JSON identity per line, ``{}`` where
nothing matched.

Example: printf 'SSH-2.0-dropbear_2019.78\\n' | python -m fingerprints match ssh.banner
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fingerprints.classify import Observation, classify
from fingerprints.rules import verify, vocabulary

MAX_LINE_CHARS = 65_536  # a longer input line is cut: a rule reads at most 4096 characters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fingerprints", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check every rule against its examples",
                           epilog="Example: python -m fingerprints verify")
    check.add_argument("files", nargs="*", type=Path, help="rule files (default: the bundled)")
    matcher = sub.add_parser("match", help="identify strings read from stdin",
                             epilog="Example: echo 'App-webs/' | python -m fingerprints match "
                                    "http.server")
    matcher.add_argument("key", help="match key, e.g. http.server")
    accuracy = sub.add_parser("accuracy", help="the classifier against a labelled corpus",
                              epilog="Example: python -m fingerprints accuracy "
                                     "tests/fingerprints/corpus.toml")
    accuracy.add_argument("corpus", type=Path)
    accuracy.add_argument("--misses", action="store_true", help="list what it got wrong")
    args = parser.parse_args(argv)
    if args.command == "accuracy":
        from fingerprints.accuracy import render, report

        tallies, misses = report(args.corpus)
        print(render(tallies))
        if args.misses:
            print("\n".join(misses))
        return 0
    if args.command == "verify":
        errors = verify(args.files or None)
        for error in errors:
            print(error, file=sys.stderr)
        print(f"{len(errors)} problem(s)" if errors else "all rules verified")
        return 1 if errors else 0
    if args.key not in vocabulary().keys:
        print(f"unknown match key {args.key!r}; one of: {', '.join(sorted(vocabulary().keys))}",
              file=sys.stderr)
        return 2
    for line in sys.stdin:
        text = line.rstrip("\n")[:MAX_LINE_CHARS]
        if text.startswith('"'):
            try:
                decoded = json.loads(text)
                text = decoded if isinstance(decoded, str) else text
            except ValueError:
                pass
        identity = classify([Observation(key=args.key, value=text)])
        print(json.dumps(identity.to_dict(), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
