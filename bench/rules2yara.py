#!/usr/bin/env python3
"""rules2yara.py — translate ragward's injection rule packs into one YARA file.

    bench/rules2yara.py [--rules DIR] [--yarac PATH] [--out FILE] [--stats FILE]
                        [--examples DIR] [-v]

For bench/yara.sh only: the output is a *comparable* rule set for a speed and
detection comparison, not a supported product. It is written to a temporary
directory by the caller and never committed.

Each ragward rule becomes one YARA rule (`condition: any of them`) whose strings
are its PCRE2 patterns rewritten as `/.../` regexes. YARA matches raw file bytes;
it has no extraction, no normalization views and no Unicode regex semantics, so
the translation is a bytes-level approximation of each pattern:

  kept      (a|b) groups instead of (?:a|b); lazy quantifiers as greedy ones
            (same texts match); \\s \\d \\S \\D;
            non-ASCII literals as their UTF-8 bytes (\\xHH...); \\w widened to
            [\\w\\x80-\\xFF] (every non-ASCII byte counts as a letter, as UCP's \\w
            counts most non-ASCII letters); a literal space of a folded-view
            rule becomes \\s+ (folded text has whitespace collapsed, raw bytes
            do not); `nocase` unless the rule is raw-view and case-sensitive
            (YARA's nocase folds ASCII only).
  approx.   the pattern still translates but matches a superset (or a shifted
            set) of what PCRE2 would: lookarounds dropped; possessive and
            atomic groups made greedy; \\p{..} classes as ASCII ranges plus
            \\x80-\\xFF; non-ASCII members dropped from negated classes; \\b
            dropped next to non-ASCII (YARA's \\b is ASCII only); ^ and $
            (start/end of an extracted text in ragward) as start/end of file,
            a newline or a tag bracket.
            Case variants of non-ASCII letters are spelled out (every letter, or
            only word-initial ones when yarac finds the former too complex).
  dropped   cannot be expressed: back-references, recursion, conditionals,
            inline options, \\X, \\K, and patterns yarac refuses (too complex);
            also every rule that only runs on the `decoded` view (YARA has no
            base64/hex/rot13 decoding for regexes).

Rules that ragward runs only on hidden channels (no `visible` in `channels`)
are emitted with the tag `hidden_channel_only`: YARA cannot tell a hidden HTML
element from a visible one and runs them on every byte.

A rule with no pattern left is not emitted; the counts go to --stats (one
`key value` line each), else to stderr. --yarac compiles every string on its
own and drops those yarac refuses; --examples writes each `match` example of
an emitted rule to DIR/<yara rule>.<n> so the caller can check the translation.
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import yaml


class Untranslatable(Exception):
    pass


# ---- a parser for the PCRE2 subset the packs use -------------------------------
# Nodes: ('alt', [seq...]) ('seq', [node...]) ('group', alt) ('look', alt)
# ('rep', node, min, max, lazy) ('lit', cp) ('class', neg, items) ('esc', c)
# ('dot',) ('bol',) ('eol',). Class items: ('range', lo, hi) or ('esc', c) or
# ('prop', name, negated).

class Parser:
    def __init__(self, pat):
        self.p = pat
        self.i = 0
        self.approx = set()

    def peek(self, k=0):
        j = self.i + k
        return self.p[j] if j < len(self.p) else ''

    def take(self):
        c = self.p[self.i]
        self.i += 1
        return c

    def parse(self):
        node = self.alt()
        if self.i != len(self.p):
            raise Untranslatable('unbalanced parenthesis')
        return node

    def alt(self):
        seqs = [self.seq()]
        while self.peek() == '|':
            self.take()
            seqs.append(self.seq())
        return ('alt', seqs)

    def seq(self):
        items = []
        while self.peek() not in ('', '|', ')'):
            atom = self.atom()
            items.append(self.quant(atom))
        return ('seq', items)

    def quant(self, atom):
        c = self.peek()
        lo = hi = None
        if c == '*':
            self.take(); lo, hi = 0, None
        elif c == '+':
            self.take(); lo, hi = 1, None
        elif c == '?':
            self.take(); lo, hi = 0, 1
        elif c == '{':
            j = self.p.find('}', self.i)
            body = self.p[self.i + 1:j] if j > 0 else ''
            parts = body.split(',')
            if j > 0 and parts[0].isdigit() and len(parts) <= 2 and \
                    (len(parts) == 1 or parts[1] == '' or parts[1].isdigit()):
                self.i = j + 1
                lo = int(parts[0])
                hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1] else None)
            else:
                return atom  # a literal '{' in PCRE2
        else:
            return atom
        lazy = False
        if self.peek() == '?':
            self.take(); lazy = True
        elif self.peek() == '+':
            self.take(); self.approx.add('possessive')
        if atom[0] == 'look':
            return atom
        return ('rep', atom, lo, hi, lazy)

    def atom(self):
        c = self.take()
        if c == '(':
            return self.group()
        if c == '[':
            return self.cls()
        if c == '\\':
            return self.escape(in_class=False)
        if c == '.':
            return ('dot',)
        if c == '^':
            return ('bol',)
        if c == '$':
            return ('eol',)
        return ('lit', ord(c))

    def group(self):
        kind = 'group'
        if self.peek() == '*':
            raise Untranslatable('verb')
        if self.peek() == '?':
            self.take()
            c = self.take()
            if c == ':':
                pass
            elif c in '=!':
                kind = 'look'
            elif c == '<' and self.peek() in '=!':
                self.take(); kind = 'look'
            elif c == '>':
                self.approx.add('atomic group')
            elif c == '<' or c == 'P' or c == "'":
                # named group: skip the name
                end = {'<': '>', "'": "'"}.get(c, '>')
                if c == 'P':
                    if self.take() != '<':
                        raise Untranslatable('named back-reference or recursion')
                j = self.p.find(end, self.i)
                if j < 0:
                    raise Untranslatable('bad group name')
                self.i = j + 1
            elif c == '#':
                j = self.p.find(')', self.i)
                self.i = j + 1
                return ('seq', [])
            elif c == '(':
                raise Untranslatable('conditional')
            elif c == '|':
                raise Untranslatable('branch reset group')
            elif c.isdigit() or c in 'R&+-':
                raise Untranslatable('recursion')
            else:
                raise Untranslatable('inline option')
        inner = self.alt()
        if self.peek() != ')':
            raise Untranslatable('unbalanced parenthesis')
        self.take()
        if kind == 'look':
            self.approx.add('lookaround dropped')
        return (kind, inner)

    def hexnum(self):
        if self.peek() == '{':
            j = self.p.find('}', self.i)
            v = int(self.p[self.i + 1:j], 16)
            self.i = j + 1
            return v
        h = ''
        while len(h) < 2 and self.peek() and self.peek() in '0123456789abcdefABCDEF':
            h += self.take()
        return int(h or '0', 16)

    def escape(self, in_class):
        c = self.take()
        simple = {'n': 10, 't': 9, 'r': 13, 'f': 12, 'v': 11, 'e': 27, 'a': 7}
        if c in simple:
            return ('lit', simple[c])
        if c == 'x':
            return ('lit', self.hexnum())
        if c in 'wWsSdD':
            return ('esc', c)
        if c in 'bB' and not in_class:
            return ('esc', c)
        if c in 'pP':
            if self.peek() == '{':
                j = self.p.find('}', self.i)
                name = self.p[self.i + 1:j]
                self.i = j + 1
            else:
                name = self.take()
            neg = (c == 'P') != name.startswith('^')
            self.approx.add('\\p class')
            return ('prop', name.lstrip('^'), neg)
        if c.isdigit() and c != '0':
            raise Untranslatable('back-reference')
        if c == '0':
            return ('lit', 0)
        if c in 'kg':
            raise Untranslatable('back-reference')
        if c in 'XKCR':
            raise Untranslatable('\\' + c)
        if c in 'hHvVN':
            raise Untranslatable('\\' + c)
        if c in 'AzZG':
            return ('bol',) if c == 'A' else ('eol',)
        if c == 'Q':
            j = self.p.find('\\E', self.i)
            text = self.p[self.i:j if j >= 0 else len(self.p)]
            self.i = j + 2 if j >= 0 else len(self.p)
            return ('seq', [('lit', ord(ch)) for ch in text])
        if c.isalnum():
            raise Untranslatable('unknown escape \\' + c)
        return ('lit', ord(c))

    def cls(self):
        neg = False
        if self.peek() == '^':
            self.take(); neg = True
        items = []
        first = True
        while True:
            c = self.peek()
            if c == '':
                raise Untranslatable('unterminated class')
            if c == ']' and not first:
                self.take()
                break
            first = False
            if c == '[' and self.peek(1) == ':':
                raise Untranslatable('POSIX class')
            self.take()
            if c == '\\':
                item = self.escape(in_class=True)
            else:
                item = ('lit', ord(c))
            if item[0] == 'lit' and self.peek() == '-' and self.peek(1) not in (']', ''):
                self.take()
                d = self.take()
                hi = self.escape(in_class=True) if d == '\\' else ('lit', ord(d))
                if hi[0] != 'lit':
                    raise Untranslatable('bad class range')
                items.append(('range', item[1], hi[1]))
            elif item[0] == 'lit':
                items.append(('range', item[1], item[1]))
            else:
                items.append(item)
        return ('class', neg, items)


# ---- rendering in YARA's regex dialect ------------------------------------------

META = set('\\/^$.|?*+()[]{}')
NONASCII = '\\x80-\\xFF'
PROPS = {'L': 'a-zA-Z', 'N': '0-9', 'Nd': '0-9', 'Lu': 'A-Z', 'Ll': 'a-z'}


def byte_esc(b):
    return '\\x%02X' % b


def lit_ascii(cp, in_class):
    ch = chr(cp)
    if cp < 0x20 or cp == 0x7F:
        return byte_esc(cp)
    if in_class:
        return '\\' + ch if ch in '\\]^-[/' else ch
    return '\\' + ch if ch in META else ch


class Renderer:
    def __init__(self, fold_space, ucase, approx):
        self.fold_space = fold_space  # literal space -> \s+
        self.ucase = ucase            # non-ASCII case variants: 'all', 'initial', 'none'
        self.approx = approx

    # returns (text, single): single means a quantifier may follow directly
    def node(self, n, prev=None, nxt=None):
        k = n[0]
        if k == 'alt':
            parts = [self.node(s)[0] for s in n[1]]
            if len(parts) == 1:
                return parts[0], False
            nonempty = [p for p in parts if p]
            if not nonempty:
                return '', True
            if len(nonempty) < len(parts):
                return '(' + '|'.join(nonempty) + ')?', True
            return '|'.join(parts), False
        if k == 'seq':
            items = n[1]
            out = []
            for idx, it in enumerate(items):
                p = items[idx - 1] if idx > 0 else None
                q = items[idx + 1] if idx + 1 < len(items) else None
                out.append(self.node(it, p, q)[0])
            text = ''.join(out)
            return text, len(items) == 1 and self.node(items[0])[1] if items else True
        if k == 'group':
            inner, _ = self.node(n[1])
            if not inner:
                return '', True
            return '(' + inner + ')', True
        if k == 'look':
            return '', True
        if k == 'rep':
            inner, single = self.node(n[1])
            if not inner:
                return '', True
            if not single:
                inner = '(' + inner + ')'
            lo, hi, lazy = n[2], n[3], n[4]
            if (lo, hi) == (0, None):
                q = '*'
            elif (lo, hi) == (1, None):
                q = '+'
            elif (lo, hi) == (0, 1):
                q = '?'
            elif hi is None:
                q = '{%d,}' % lo
            elif lo == hi:
                q = '{%d}' % lo
            else:
                q = '{%d,%d}' % (lo, hi)
            # Lazy and greedy repeats accept the same texts (they only choose
            # among matches), and YARA refuses a regex that mixes them: greedy.
            return inner + q, True
        if k == 'lit':
            cp = n[1]
            if cp == 0x20 and self.fold_space:
                return '\\s+', False
            if cp < 0x80:
                return lit_ascii(cp, False), True
            forms = [cp]
            if self.ucase == 'all' or (self.ucase == 'initial' and self.word_start(prev)):
                forms += case_variants(cp)
            if len(forms) > 1:
                return '(' + '|'.join(utf8_esc(f) for f in forms) + ')', True
            return utf8_esc(cp), len(chr(cp).encode('utf-8')) == 1
        if k == 'esc':
            c = n[1]
            if c == 'w':
                return '[\\w' + NONASCII + ']', True
            if c == 'W':
                return '[^\\w' + NONASCII + ']', True
            if c in 'bB':
                if self.touches_nonascii(prev, last=True) or self.touches_nonascii(nxt, last=False):
                    self.approx.add('\\b next to non-ASCII dropped')
                    return '', True
            return '\\' + c, True
        if k == 'dot':
            return '.', True
        if k == 'bol':
            self.approx.add('^/$ anchor')
            return '(^|[\\n>])', True
        if k == 'eol':
            self.approx.add('^/$ anchor')
            return '($|[\\n<])', True
        if k == 'class':
            return self.cls(n[1], n[2])
        if k == 'prop':  # \p outside a class
            return self.cls(n[2], [('prop', n[1], False)])
        raise Untranslatable('internal: ' + k)

    def cls(self, neg, items):
        body = ''
        multi = []  # non-ASCII members of a positive class, as byte sequences
        for it in items:
            if it[0] == 'range':
                lo, hi = it[1], it[2]
                if hi < 0x80:
                    body += lit_ascii(lo, True) if lo == hi else \
                        lit_ascii(lo, True) + '-' + lit_ascii(hi, True)
                    continue
                if lo < 0x80:
                    body += lit_ascii(lo, True) + '-\\x7F'
                    lo = 0x80
                if neg:
                    self.approx.add('non-ASCII dropped from negated class')
                elif lo == hi:
                    for f in [lo] + (case_variants(lo) if self.ucase != 'none' else []):
                        if utf8_esc(f) not in multi:
                            multi.append(utf8_esc(f))
                else:
                    self.approx.add('non-ASCII range as any non-ASCII byte')
                    body += NONASCII
            elif it[0] == 'esc':
                c = it[1]
                if c == 'w':
                    body += '\\w' + NONASCII
                elif c == 's' or c == 'd':
                    body += '\\' + c
                elif c in 'WSD':
                    if neg:
                        raise Untranslatable('negated class with \\' + c)
                    body += '\\' + c
                else:
                    raise Untranslatable('class escape \\' + c)
            elif it[0] == 'prop':
                name, pneg = it[1], it[2]
                if pneg:
                    raise Untranslatable('negated \\P class')
                body += PROPS.get(name, '') + NONASCII
            if self.fold_space and it[0] == 'range' and it[1] <= 0x20 <= it[2] and '\\s' not in body:
                body += '\\s'
        if not multi:
            if not body:
                raise Untranslatable('empty class')
            return '[' + ('^' if neg else '') + body + ']', True
        alts = multi + (['[' + body + ']'] if body else [])
        return '(' + '|'.join(alts) + ')', True

    @staticmethod
    def word_start(prev):
        """Whether a literal after prev likely starts a word (start of a
        branch, after a space, \\s or \\b)."""
        if prev is None:
            return True
        if prev[0] == 'rep':
            prev = prev[1]
        return (prev[0] == 'lit' and prev[1] == 0x20) or (prev[0] == 'esc' and prev[1] in 'sb')

    def touches_nonascii(self, n, last):
        """Whether the first (or last) character n can match is non-ASCII."""
        if n is None:
            return False
        k = n[0]
        if k == 'lit':
            return n[1] >= 0x80
        if k in ('group',):
            return self.touches_nonascii(n[1], last)
        if k == 'alt':
            return any(self.touches_nonascii(s, last) for s in n[1])
        if k == 'seq':
            items = [i for i in n[1] if i[0] != 'look']
            if not items:
                return False
            return self.touches_nonascii(items[-1] if last else items[0], last)
        if k == 'rep':
            return self.touches_nonascii(n[1], last)
        if k == 'class':
            return any(i[0] == 'range' and i[2] >= 0x80 for i in n[2]) or \
                any(i[0] == 'prop' for i in n[2])
        if k == 'prop':
            return True
        return False


def utf8_esc(cp):
    return ''.join(byte_esc(b) for b in chr(cp).encode('utf-8'))


def case_variants(cp):
    """Other single-character case forms of a non-ASCII letter (YARA's
    nocase folds ASCII only; ragward's folded view folds every script)."""
    ch = chr(cp)
    out = []
    for v in (ch.upper(), ch.lower(), ch.title()):
        if len(v) == 1 and v != ch and ord(v) not in out:
            out.append(ord(v))
    return out


def translate(pat, fold_space, ucase='none'):
    ps = Parser(pat)
    tree = ps.parse()
    r = Renderer(fold_space, ucase, ps.approx)
    text, _ = r.node(tree)
    if not text:
        raise Untranslatable('empty after translation')
    return text, sorted(ps.approx)


def ident(rule_id):
    return 'rw_' + ''.join(ch if ch.isalnum() else '_' for ch in rule_id)


def yara_string(regex, nocase):
    # '/' delimits YARA regexes; the renderer escapes it in literals already.
    return '/%s/%s' % (regex, ' nocase' if nocase else '')


def yarac_ok(yarac, rule_text, tmpdir):
    src = os.path.join(tmpdir, 'one.yar')
    with open(src, 'w', encoding='ascii') as f:
        f.write(rule_text)
    r = subprocess.run([yarac, '-w', src, os.path.join(tmpdir, 'one.yarc')],
                       capture_output=True, text=True)
    msg = (r.stderr or r.stdout).strip().splitlines()
    return r.returncode == 0, (msg[0].split(': ', 2)[-1] if msg else '')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument('--rules', default=os.path.join(here, '..', 'rules', 'injection'))
    ap.add_argument('--yarac', default=None, help='check each translated string with this yarac')
    ap.add_argument('--out', default='-')
    ap.add_argument('--stats', default=None)
    ap.add_argument('--examples', default=None,
                    help='write each `match` example of an emitted rule to DIR/<yara rule>.<n>')
    ap.add_argument('-v', '--verbose', action='store_true', help='name each dropped pattern')
    a = ap.parse_args()

    stats = {'rules': 0, 'rules_translated': 0, 'rules_exact': 0, 'rules_approximated': 0,
             'rules_untranslatable': 0, 'rules_decoded_only': 0,
             'rules_hidden_channel_only': 0, 'patterns': 0,
             'patterns_translated': 0, 'patterns_approximated': 0, 'patterns_dropped': 0}
    reasons = {}
    out = ['// generated by bench/rules2yara.py from %s; do not edit, do not commit'
           % os.path.basename(os.path.normpath(a.rules)), '']
    tmpdir = tempfile.mkdtemp(prefix='rules2yara.')
    try:
        for path in sorted(glob.glob(os.path.join(a.rules, '*.yaml'))):
            with open(path, encoding='utf-8') as f:
                pack = yaml.safe_load(f)
            for rule in pack['rules']:
                stats['rules'] += 1
                pats = rule['patterns']
                stats['patterns'] += len(pats)
                views = rule.get('views', ['folded'])
                if views == ['decoded']:
                    stats['rules_decoded_only'] += 1
                    stats['rules_untranslatable'] += 1
                    stats['patterns_dropped'] += len(pats)
                    reasons['decoded view only'] = reasons.get('decoded view only', 0) + len(pats)
                    continue
                folded = any(v in ('folded', 'skeleton') for v in views)
                nocase = folded or rule.get('caseless', True)
                strings = []
                approximated = False
                for pat in pats:
                    try:
                        rx, approx = translate(pat, fold_space=folded,
                                               ucase='initial' if nocase else 'none')
                        if nocase and a.yarac:
                            # Richest form yarac accepts: case variants of every
                            # non-ASCII letter, else of word-initial ones, else none.
                            for mode in ('all', 'initial', 'none'):
                                cand, cand_approx = translate(pat, fold_space=folded, ucase=mode)
                                ok, _ = yarac_ok(a.yarac, 'rule r { strings: $a = %s condition: $a }\n'
                                                 % yara_string(cand, nocase), tmpdir)
                                if ok:
                                    if mode != 'all' and cand != translate(pat, folded, 'all')[0]:
                                        cand_approx = cand_approx + ['fewer non-ASCII case variants (yarac limit)']
                                    rx, approx = cand, cand_approx
                                    break
                    except Untranslatable as e:
                        reasons[str(e)] = reasons.get(str(e), 0) + 1
                        if a.verbose:
                            sys.stderr.write('dropped %s: %s\n' % (rule['id'], e))
                        stats['patterns_dropped'] += 1
                        continue
                    s = yara_string(rx, nocase)
                    if a.yarac:
                        ok, msg = yarac_ok(a.yarac, 'rule r { strings: $a = %s condition: $a }\n' % s, tmpdir)
                        if not ok:
                            key = 'yarac: ' + msg
                            reasons[key] = reasons.get(key, 0) + 1
                            if a.verbose:
                                sys.stderr.write('dropped %s: %s\n' % (rule['id'], key))
                            stats['patterns_dropped'] += 1
                            continue
                    for why in approx:
                        reasons['approx: ' + why] = reasons.get('approx: ' + why, 0) + 1
                    if approx:
                        stats['patterns_approximated'] += 1
                        approximated = True
                    else:
                        stats['patterns_translated'] += 1
                    strings.append(s)
                if not strings:
                    stats['rules_untranslatable'] += 1
                    continue
                stats['rules_translated'] += 1
                if approximated or len(strings) < len(pats):
                    stats['rules_approximated'] += 1
                else:
                    stats['rules_exact'] += 1
                # ragward runs these only on hidden channels (hidden elements,
                # attributes, comments...); YARA cannot tell where in the HTML
                # a byte is, so they run on every byte. Tagged so the caller
                # can report detection without them too.
                channels = rule.get('channels')
                hidden_only = channels is not None and 'visible' not in channels
                if hidden_only:
                    stats['rules_hidden_channel_only'] += 1
                if a.examples:
                    for i, ex in enumerate(rule['examples']['match']):
                        with open(os.path.join(a.examples, '%s.%d' % (ident(rule['id']), i)),
                                  'w', encoding='utf-8') as f:
                            f.write(ex)
                out.append('rule %s%s' % (ident(rule['id']), ' : hidden_channel_only' if hidden_only else ''))
                out.append('{')
                out.append('  meta:')
                out.append('    id = "%s"' % rule['id'])
                out.append('    severity = "%s"' % rule['severity'])
                out.append('    views = "%s"' % ','.join(views))
                out.append('  strings:')
                for i, s in enumerate(strings):
                    out.append('    $p%d = %s' % (i, s))
                out.append('  condition:')
                out.append('    any of them')
                out.append('}')
                out.append('')
    finally:
        for fn in ('one.yar', 'one.yarc'):
            if os.path.exists(os.path.join(tmpdir, fn)):
                os.unlink(os.path.join(tmpdir, fn))
        os.rmdir(tmpdir)

    text = '\n'.join(out)
    if a.out == '-':
        sys.stdout.write(text)
    else:
        with open(a.out, 'w', encoding='ascii') as f:
            f.write(text)
    lines = ['%s %d' % kv for kv in stats.items()]
    lines += ['reason %d %s' % (n, r) for r, n in sorted(reasons.items(), key=lambda x: -x[1])]
    if a.stats:
        with open(a.stats, 'w') as f:
            f.write('\n'.join(lines) + '\n')
    else:
        sys.stderr.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
