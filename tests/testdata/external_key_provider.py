#!/usr/bin/env python3
"""An external key provider speaking OpenTofu's protocol v1, after OpenTofu's own test provider
(internal/encryption/keyprovider/external/testprovider/data/testprovider.py): a fixed 16-byte
key, a decryption key only when metadata came in. With argument "bad-magic" it prints a wrong
header; with "fail" it exits 3 after writing to stderr; with "record FILE" it appends its input
to FILE (to count runs)."""

import base64
import json
import sys

args = sys.argv[1:]
if args[:1] == ["fail"]:
    sys.stderr.write("vault is sealed\n")
    sys.exit(3)
magic = "Not-OpenTofu" if args[:1] == ["bad-magic"] else "OpenTofu-External-Key-Provider"
sys.stdout.write(json.dumps({"magic": magic, "version": 1}) + "\n")
sys.stdout.flush()
data = json.loads(sys.stdin.read())
if args[:1] == ["record"]:
    with open(args[1], "a") as f:
        f.write(json.dumps(data) + "\n")
key = base64.b64encode(bytes(range(1, 17))).decode("ascii")
keys = {"encryption_key": key}
if data is not None:
    keys["decryption_key"] = key
sys.stdout.write(json.dumps({"keys": keys, "meta": {"external_data": {"key_id": "k1"}}}))
