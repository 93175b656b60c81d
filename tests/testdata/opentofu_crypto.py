#!/usr/bin/env python3
"""An independent implementation of OpenTofu's state encryption (pbkdf2 key provider, aes_gcm
method, v0 envelope), written from OpenTofu's source (github.com/opentofu/opentofu at f831fa1a):
internal/encryption/base.go:104-145, state.go:67-89, keyprovider/pbkdf2/provider.go:22-91,
keyprovider/pbkdf2/metadata.go:15-20, method/aesgcm/aesgcm.go:25-106.

Used by tests/encryption_interop_test.ts to check that gaib-state and this script read each
other's envelopes. Reads one JSON request on stdin, writes one JSON answer on stdout:

  {"op": "encrypt", "passphrase", "hash_function", "key_length", "iterations", "salt_length",
   "aad": [bytes] | null, "meta_key", "plaintext": base64}  -> {"envelope": text}
  {"op": "decrypt", "passphrase", "aad": [bytes] | null, "meta_key", "envelope": text}
                                                             -> {"plaintext": base64}
"""

import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def pbkdf2(passphrase, meta):
    return hashlib.pbkdf2_hmac(
        meta["hash_function"],
        passphrase.encode("utf-8"),
        base64.b64decode(meta["salt"]),
        meta["iterations"],
        meta["key_length"],
    )


def go_json(value):
    # Go's encoding/json: compact, map keys sorted, HTML-safe escapes.
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def encrypt(req):
    plaintext = base64.b64decode(req["plaintext"])
    state = json.loads(plaintext)
    # metadata.go:16-19, in struct order
    meta = (
        '{"salt":%s,"iterations":%d,"hash_function":%s,"key_length":%d}'
        % (
            json.dumps(base64.b64encode(os.urandom(req["salt_length"])).decode()),
            req["iterations"],
            json.dumps(req["hash_function"]),
            req["key_length"],
        )
    )
    key = pbkdf2(req["passphrase"], json.loads(meta))
    nonce = os.urandom(12)
    aad = bytes(req["aad"]) if req["aad"] is not None else None
    sealed = nonce + AESGCM(key).encrypt(nonce, plaintext, aad)
    envelope = '{"serial":%d,"lineage":%s,"meta":%s,"encrypted_data":%s,"encryption_version":"v0"}' % (
        state["serial"],
        go_json(state["lineage"]),
        go_json({req["meta_key"]: base64.b64encode(meta.encode()).decode()}),
        json.dumps(base64.b64encode(sealed).decode()),
    )
    return {"envelope": envelope}


def decrypt(req):
    envelope = json.loads(req["envelope"])
    assert envelope["encryption_version"] == "v0"
    meta = json.loads(base64.b64decode(envelope["meta"][req["meta_key"]]))
    key = pbkdf2(req["passphrase"], meta)
    data = base64.b64decode(envelope["encrypted_data"])
    aad = bytes(req["aad"]) if req["aad"] is not None else None
    plaintext = AESGCM(key).decrypt(data[:12], data[12:], aad)
    state = json.loads(plaintext)
    assert state["serial"] == envelope["serial"] and state["lineage"] == envelope["lineage"]
    return {"plaintext": base64.b64encode(plaintext).decode()}


if __name__ == "__main__":
    request = json.load(sys.stdin)
    answer = encrypt(request) if request["op"] == "encrypt" else decrypt(request)
    sys.stdout.write(json.dumps(answer))
