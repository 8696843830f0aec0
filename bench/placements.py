#!/usr/bin/env python3
"""Placement generalization: the dev corpus's own English payloads, moved into
placements and encodings the dev set does not use, scanned with `ragward scan`.

The dev set decides nothing about the sealed set, but a scanner that learned
dev's placements by heart shows it here: each payload that `ragward scan` finds
in plain text is written again hex-encoded, rot13 with a marker, percent-encoded,
base64 in Markdown inline code, in a table cell, a <details> body, an aria-label,
opacity:0 / color:transparent / 0.01em text, a Markdown heading, footnote and
link title, with a zero-width space between every character, with Cyrillic
homoglyphs, spaced out (the first three words; every word with three spaces
between words; every word with " / " between words; every word with one space
everywhere), with words split by hyphens (after the second letter of every
word of six letters or more; at a line break in the middle of every word of
eight or more), and as a JSON string value. Per placement it prints how many
of those payloads are still detected (verdict other than accept).

Usage: bench/placements.py [EVAL_DIR] [N]     (default ../shared/eval/dev, 40)
       RAGWARD_BIN selects the binary (default build-bench/ragward).
Generated files live in a temporary directory that is removed afterwards; the
corpus is only read.
"""
import base64
import codecs
import collections
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
evdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "..", "shared", "eval", "dev")
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 40
binary = os.environ.get("RAGWARD_BIN", os.path.join(repo, "build-bench", "ragward"))

CARRIER = ("<html><body><h1>Configuring the cache</h1><p>The cache keeps recent responses "
           "in memory. Set the size in the configuration file.</p>%s<p>Restart the service "
           "after changing the file.</p></body></html>")
CYRILLIC = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e"})


def payloads():
    """English payloads of plain-override and role-token documents, as text."""
    out = []
    with open(os.path.join(evdir, "labels.jsonl"), encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["label"] != "injection" or d["technique"] not in ("plain-override", "role-token"):
                continue
            if d.get("lang", "en") != "en":
                continue
            with open(os.path.join(evdir, d["file"]), encoding="utf-8", errors="replace") as g:
                text = g.read()
            s, e = d["spans"][0]
            p = html.unescape(re.sub(r"<[^>]+>", " ", text[s:e])).strip()
            if 30 < len(p) < 400:
                out.append(p)
    return out[:limit]


def spaced(p):
    words = p.split()
    return " ".join(" ".join(w) for w in words[:3]) + " " + " ".join(words[3:])


def spaced_gaps(p):
    """Every word letter-spaced, three spaces between words."""
    return "   ".join(" ".join(w) for w in p.split())


def spaced_punct(p):
    """Every word letter-spaced, " / " between words."""
    return " / ".join(" ".join(w) for w in p.split())


def spaced_all(p):
    """Every word letter-spaced, one space everywhere: no word gap to see."""
    return " ".join(" ".join(w) for w in p.split())


def hyphen_split(p):
    """Every word of six letters or more split by a hyphen after its second."""
    return " ".join(w[:2] + "-" + w[2:] if len(w) >= 6 and w[:3].isalpha() else w for w in p.split())


def hyphen_break(p):
    """Lines broken inside the long words: "instruc-" + newline + "tions"."""
    return " ".join(w[:len(w) // 2] + "-\n" + w[len(w) // 2:] if len(w) >= 8 and w.isalpha() else w
                    for w in p.split())


def variants(p):
    h = html.escape(p)
    q = urllib.parse.quote(p)
    return {
        "plain.txt": f"Cache notes.\n{p}\nEnd.\n",
        "hex.html": CARRIER % f"<p>Checksum: {p.encode().hex()}</p>",
        "rot13.html": CARRIER % f"<p>Decode this rot13: {codecs.encode(p, 'rot13')}</p>",
        "percent.html": CARRIER % f'<p><a href="https://example.com/?q={q}">link</a> see {q}</p>',
        "base64-code.md": f"# Cache\n\n`{base64.b64encode(p.encode()).decode()}`\n",
        "table-cell.html": CARRIER % f"<table><tr><td>Size</td><td>{h}</td></tr></table>",
        "details.html": CARRIER % f"<details><summary>More</summary>{h}</details>",
        "aria-label.html": CARRIER % f'<button aria-label="{h}">OK</button>',
        "opacity.html": CARRIER % f'<span style="opacity:0">{h}</span>',
        "transparent.html": CARRIER % f'<span style="color:transparent">{h}</span>',
        "tiny-em.html": CARRIER % f'<span style="font-size:0.01em">{h}</span>',
        "md-heading.md": f"# Cache\n\nThe cache keeps recent responses.\n\n## {p}\n\nRestart the service.\n",
        "md-footnote.md": f"# Cache\n\nThe cache keeps recent responses.[^1]\n\n[^1]: {p}\n",
        "md-link-title.md": f"# Cache\n\nSee [the docs](https://example.com/docs \"{p.replace(chr(34), '')}\").\n",
        "zero-width-all.txt": f"Cache notes.\n{chr(0x200B).join(p)}\nEnd.\n",
        "homoglyph.txt": f"Cache notes.\n{p.translate(CYRILLIC)}\nEnd.\n",
        "spaced-out.txt": f"Cache notes.\n{spaced(p)}\nEnd.\n",
        "spaced-gaps.txt": f"Cache notes.\n{spaced_gaps(p)}\nEnd.\n",
        "spaced-all.txt": f"Cache notes.\n{spaced_all(p)}\nEnd.\n",
        "spaced-punct.txt": f"Cache notes.\n{spaced_punct(p)}\nEnd.\n",
        "hyphen-split.txt": f"Cache notes.\n{hyphen_split(p)}\nEnd.\n",
        "hyphen-break.txt": f"Cache notes.\n{hyphen_break(p)}\nEnd.\n",
        "json-value.txt": 'config = {"note": "%s"}\n' % p.replace('"', '\\"'),
    }


def main():
    pays = payloads()
    with tempfile.TemporaryDirectory(prefix="ragward-placements-") as tmp:
        files = []
        for i, p in enumerate(pays):
            for name, content in variants(p).items():
                path = os.path.join(tmp, f"{i:03d}-{name}")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(content)
                files.append(path)
        run = subprocess.run([binary, "scan", "--json", *files], capture_output=True, text=True)
        if run.returncode not in (0, 1):
            sys.stderr.write(run.stderr)
            sys.exit(2)
    detected = collections.defaultdict(dict)
    for line in run.stdout.splitlines():
        d = json.loads(line)
        i, name = os.path.basename(d["file"]).split("-", 1)
        detected[name.rsplit(".", 1)[0]][i] = d.get("verdict", "accept") != "accept"
    base = [i for i, hit in detected["plain"].items() if hit]
    print(f"{len(pays)} payloads from {os.path.relpath(evdir, repo)}; {len(base)} detected in plain text;"
          " per placement, how many of those are still detected:")
    for name in sorted(detected):
        if name == "plain":
            continue
        got = sum(1 for i in base if detected[name].get(i))
        print(f"  {name:18s} {got:3d}/{len(base)}")


if __name__ == "__main__":
    main()
