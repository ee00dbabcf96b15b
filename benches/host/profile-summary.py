#!/usr/bin/env python3
"""Sums a wasmtime guest profile (Firefox Profiler JSON, from
host/gateway/examples/profile_filter.rs) by function: self and inclusive
shares of the samples, with Rust symbols shortened.

usage: profile-summary.py PROFILE.json [TOP]"""
import collections
import json
import re
import sys


def short(name):
    # Legacy Rust mangling: _ZN<len><ident>...17h<hash>E -> a::b::c
    if name.startswith("_ZN"):
        parts, i = [], 3
        while i < len(name) and name[i].isdigit():
            j = i
            while name[j].isdigit():
                j += 1
            n = int(name[i:j])
            parts.append(name[j:j + n])
            i = j + n
        parts = [p for p in parts if not re.fullmatch(r"h[0-9a-f]{16}", p)]
        text = "::".join(parts)
        for a, b in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$RF$", "&"), ("..", "::"), ("$C$", ",")):
            text = text.replace(a, b)
        return text
    return name


def main():
    profile = json.load(open(sys.argv[1]))
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    thread = profile["threads"][0]
    strings = thread["stringArray"]
    funcs = thread["funcTable"]["name"]
    frames = thread["frameTable"]["func"]
    prefix, frame_of = thread["stackTable"]["prefix"], thread["stackTable"]["frame"]
    own, total = collections.Counter(), collections.Counter()
    samples = [s for s in thread["samples"]["stack"] if s is not None]
    for stack in samples:
        seen = set()
        first = True
        while stack is not None:
            name = short(strings[funcs[frames[frame_of[stack]]]])
            if first:
                own[name] += 1
                first = False
            if name not in seen:
                total[name] += 1
                seen.add(name)
            stack = prefix[stack]
    n = len(samples)
    print(f"{n} samples\n\nself")
    for name, c in own.most_common(top):
        print(f"{100 * c / n:5.1f}%  {name[:110]}")
    print("\ninclusive")
    for name, c in total.most_common(top):
        print(f"{100 * c / n:5.1f}%  {name[:110]}")


main()
