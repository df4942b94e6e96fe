#!/usr/bin/env python3
"""Name coverage against Velociraptor's VQL reference (`make parity`).

Counts the Linux names (records whose platforms include linux_amd64_cgo) that quarry declares with
the same kind (plugin, function, accessor), endpoint and server apart (category `server`), and lists
what is missing. Windows-evidence parsers are listed apart: Quarry does not aim at them on Linux.
Usage: parity.py [--quarry BIN] [--reference YAML] [--min-endpoint N] [--min-server N]
"""
import argparse
import json
import os
import re
import subprocess
import sys

# Windows evidence formats (the list): not goals for a Linux endpoint.
WINDOWS_EVIDENCE = re.compile(
    r"^(authenticode|carve_usn|ewf|fat|lookupSID|mft|mscfb|olevba|parse_ese|parse_ese_catalog|parse_evtx|parse_mft|parse_ntfs"
    r"|parse_ntfs_i30|parse_ntfs_ranges|parse_pst|parse_recyclebin|parse_usn|prefetch|pst|raw_ntfs|raw_reg|read_reg_key"
    r"|srum_lookup_id|vhdx|vmdk|watch_evtx|watch_usn|parse_lnk|lzxpress_decompress)$")


def load_reference(path):
    """The reference's records (a YAML list of flat mappings) without needing PyYAML."""
    try:
        import yaml  # noqa: F401
        with open(path) as handle:
            return yaml.safe_load(handle)
    except ImportError:
        pass
    records, current, key = [], None, None
    for line in open(path):
        if line.startswith("- name: "):
            current = {"name": line[8:].strip(), "platforms": []}
            records.append(current)
            key = None
        elif current is not None and re.match(r"^  (type|category): ", line):
            k, v = line.strip().split(": ", 1)
            current[k] = v
        elif current is not None and line.startswith("  platforms:"):
            key = "platforms"
        elif current is not None and key == "platforms" and line.startswith("  - "):
            current["platforms"].append(line[4:].strip())
        elif not line.startswith("  "):
            key = None
    return records


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser()
    parser.add_argument("--quarry", default=os.path.join(here, "..", ".build", "debug", "quarry"))
    parser.add_argument("--reference", default=os.path.join(here, "..", "..", "shared", "reference", "velociraptor-vql.yaml"))
    parser.add_argument("--min-endpoint", type=int)
    parser.add_argument("--min-server", type=int)
    parser.add_argument("--summary", action="store_true", help="only the two count lines")
    args = parser.parse_args()
    if not os.path.exists(args.reference):
        print(f"reference not found at {args.reference}: skipped")
        return 0
    names = json.loads(subprocess.run([args.quarry, "names"], capture_output=True, text=True, check=True).stdout)
    have = {
        ("Plugin", False): set(names["plugins"]), ("Function", False): set(names["functions"]),
        ("Accessor", False): set(names["accessors"]),
        ("Plugin", True): set(names["server_plugins"]), ("Function", True): set(names["server_functions"]),
        ("Accessor", True): set(),
    }
    records = [r for r in load_reference(args.reference) if "linux_amd64_cgo" in (r.get("platforms") or [])]
    status = 0
    for server in (False, True):
        selected = [r for r in records if (r.get("category") == "server") == server]
        covered = [r for r in selected if r["name"] in have[(r["type"], server)]
                   or (server and r["name"] in have[(r["type"], False)])]
        missing = [r for r in selected if r not in covered]
        windows = [r for r in missing if WINDOWS_EVIDENCE.search(r["name"])]
        label = "server" if server else "endpoint"
        print(f"{label}: {len(covered)} of {len(selected)} names ({len(windows)} of the missing are Windows-evidence parsers)")
        for kind in ("Plugin", "Function", "Accessor") if not args.summary else ():
            rest = sorted(r["name"] for r in missing if r["type"] == kind and r not in windows)
            if rest:
                print(f"  missing {kind.lower()}s ({len(rest)}): {' '.join(rest)}")
        if windows and not args.summary:
            print(f"  Windows evidence, not aimed at: {' '.join(sorted(r['name'] for r in windows))}")
        minimum = args.min_server if server else args.min_endpoint
        if minimum is not None and len(covered) < minimum:
            print(f"below the ratchet: {len(covered)} < {minimum}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
