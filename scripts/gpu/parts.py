#!/usr/bin/env python3
"""Split the GPU bundle into parts that fit a device run, and put it back together.

Why this exists: a run on the lent GPU machine brings at most 64 MiB of files (the repository's
own included), and the bundle (release binary, ONNX Runtime's CUDA libraries, tokenizer, corpus)
is about 190 MB compressed. `scripts/gpu/bundle` splits it here; each run carries one part and
`scripts/gpu/run` keeps it outside the repository until the last run joins them. Both sides use
this one module, so the rules are the same on both: every part at most `limit` bytes, each part's
sha256 and size in the manifest, the whole archive's sha256 checked after joining. A missing or
corrupt part is refused by name (`PartError`), never joined into a broken archive.

Standard library only (the GPU machine has no network to install anything). Python 3.8+.

    python3 parts.py split ARCHIVE OUTDIR --limit BYTES    # writes OUTDIR/part-NNN, manifest.json
    python3 parts.py verify MANIFEST DIR [PART...]          # checks the named parts (default: all)
    python3 parts.py join MANIFEST DIR OUT                  # verifies, joins, checks the whole
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

MANIFEST = "manifest.json"
CHUNK = 1 << 20


class PartError(Exception):
    """A part (or the joined archive) is missing or does not match the manifest."""


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def part_name(i: int) -> str:
    return f"part-{i:03d}"


def split(archive: str, outdir: str, limit: int) -> dict:
    """Cuts `archive` into `outdir/part-NNN` of at most `limit` bytes; writes and returns the manifest."""
    if limit <= 0:
        raise ValueError(f"part limit must be positive, got {limit}")
    os.makedirs(outdir, exist_ok=True)
    for old in os.listdir(outdir):  # parts of an earlier, larger bundle must not linger
        if old.startswith("part-") or old == MANIFEST:
            os.remove(os.path.join(outdir, old))
    whole = hashlib.sha256()
    parts = []
    size = 0
    with open(archive, "rb") as src:
        while True:
            h = hashlib.sha256()
            name = part_name(len(parts))
            written = 0
            with open(os.path.join(outdir, name), "wb") as dst:
                while written < limit:
                    block = src.read(min(CHUNK, limit - written))
                    if not block:
                        break
                    dst.write(block)
                    h.update(block)
                    whole.update(block)
                    written += len(block)
            if written == 0 and parts:
                os.remove(os.path.join(outdir, name))
                break
            parts.append({"name": name, "size": written, "sha256": h.hexdigest()})
            size += written
            if written < limit:
                break
    manifest = {
        "archive": os.path.basename(archive),
        "size": size,
        "sha256": whole.hexdigest(),
        "limit": limit,
        "parts": parts,
    }
    with open(os.path.join(outdir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def load_manifest(path: str) -> dict:
    try:
        with open(path) as f:
            m = json.load(f)
    except FileNotFoundError:
        raise PartError(f"manifest {path} is missing") from None
    except ValueError as e:
        raise PartError(f"manifest {path} is not valid JSON: {e}") from None
    if not isinstance(m.get("parts"), list) or not m["parts"]:
        raise PartError(f"manifest {path} lists no parts")
    return m


def check_part(entry: dict, path: str) -> str | None:
    """Why the file at `path` is not the part `entry` describes; None when it is."""
    if not os.path.isfile(path):
        return f"{entry['name']} is missing (looked for {path})"
    size = os.path.getsize(path)
    if size != entry["size"]:
        return f"{entry['name']} is corrupt: {size} bytes, the manifest says {entry['size']}"
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        return f"{entry['name']} is corrupt: sha256 {digest}, the manifest says {entry['sha256']}"
    return None


def verify(manifest: dict, dirs, names=None) -> dict:
    """Checks the parts named (default: all) against the manifest, looking in each of `dirs` in
    turn. Returns {name: path}; raises PartError listing every part that is missing or corrupt."""
    if isinstance(dirs, str):
        dirs = [dirs]
    entries = {p["name"]: p for p in manifest["parts"]}
    wanted = list(names) if names else list(entries)
    found, problems = {}, []
    for name in wanted:
        entry = entries.get(name)
        if entry is None:
            problems.append(f"{name} is not in the manifest (it lists {', '.join(entries)})")
            continue
        if entry["size"] > manifest["limit"]:
            problems.append(f"{name} is {entry['size']} bytes, over the limit of {manifest['limit']}")
            continue
        reasons = []
        for d in dirs:
            why = check_part(entry, os.path.join(d, name))
            if why is None:
                found[name] = os.path.join(d, name)
                break
            reasons.append(why)
        else:
            # Name the most telling reason: corrupt beats missing.
            problems.append(next((r for r in reasons if "corrupt" in r), reasons[0] if reasons else f"{name} is missing"))
    if problems:
        raise PartError("; ".join(problems))
    return found


def join(manifest: dict, dirs, out: str) -> str:
    """Verifies every part, writes them in order to `out`, and checks the whole archive's sha256."""
    found = verify(manifest, dirs)
    whole = hashlib.sha256()
    tmp = out + ".partial"
    with open(tmp, "wb") as dst:
        for entry in manifest["parts"]:
            with open(found[entry["name"]], "rb") as src:
                for block in iter(lambda: src.read(CHUNK), b""):
                    dst.write(block)
                    whole.update(block)
    if whole.hexdigest() != manifest["sha256"]:
        os.remove(tmp)
        raise PartError(f"the joined archive's sha256 is {whole.hexdigest()}, the manifest says {manifest['sha256']}")
    os.replace(tmp, out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("archive")
    s.add_argument("outdir")
    s.add_argument("--limit", type=int, required=True)
    v = sub.add_parser("verify")
    v.add_argument("manifest")
    v.add_argument("dir", help="folder of parts; several separated by ':' are searched in turn")
    v.add_argument("parts", nargs="*")
    j = sub.add_parser("join")
    j.add_argument("manifest")
    j.add_argument("dir", help="folder of parts; several separated by ':' are searched in turn")
    j.add_argument("out")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "split":
            m = split(args.archive, args.outdir, args.limit)
            print(json.dumps(m, indent=2))
        elif args.cmd == "verify":
            found = verify(load_manifest(args.manifest), args.dir.split(":"), args.parts)
            for name, path in found.items():
                print(f"{name} ok ({path})")
        else:
            join(load_manifest(args.manifest), args.dir.split(":"), args.out)
            print(f"joined {args.out}: sha256 ok")
    except PartError as e:
        print(f"parts: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
