#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/<target>/ in the byte layouts fuzz/checks.rs decodes.

Vendor vectors: Standard Webhooks reference (libraries/javascript webhook.test.ts), GitHub's
"Validating webhook deliveries" page, stripe-dotnet EventUtilityTest, Slack's "Verifying
requests from Slack", Shopify's shopify-api-js webhook validation test. Re-run after changing
a layout; libFuzzer adds its own files next to these (named by SHA-1).
"""
import base64, hashlib, hmac, os, pathlib

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"
REPO = pathlib.Path(__file__).resolve().parent.parent

NAMES = ["webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp",
         "svix-signature", "stripe-signature", "x-hub-signature-256", "x-github-delivery",
         "x-slack-signature", "x-slack-request-timestamp", "x-shopify-hmac-sha256",
         "x-shopify-webhook-id", "x-signature", "x-timestamp", "x-id", "x-body-mac", "content-type"]

def pick(name):
    i = NAMES.index(name)
    return bytes([i if i else len(NAMES)])  # 0 is the field separator

def fields(body, headers):
    out = body
    for name, value in headers:
        out += b"\0" + pick(name) + value.encode()
    return out

SW = (b'{"test": 2432232314}', "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
GH = (b"Hello, World!", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
STRIPE_BODY = (REPO / "tests/data/stripe_event_test_signature.json").read_bytes()
STRIPE = ("t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,"
          "v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef")
SLACK_BODY = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
              b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
              b"collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F39770"
              b"0885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10"
              b"d2c447fce8b6703c")
SLACK = ("v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", "1531420618")
SHOPIFY = (b'{"foo": "bar"}', "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=")
KNOWN = b"fuzz-known-secret-2f1c9a"
NOW = 1614265330

def custom_hex_sig(body, ident, ts_ms):
    msg = f"{ident}.{ts_ms}.{{".encode() + body
    return "sha256=" + hmac.new(KNOWN, msg, hashlib.sha256).hexdigest()

def write(target, name, data):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)

# header_parsers: body \0 <name pick><value> \0 ...
hp = {
    "standard_webhooks_vector": fields(SW[0], [("webhook-id", SW[1]), ("webhook-timestamp", SW[2]),
                                                ("webhook-signature", SW[3])]),
    "svix_vector_two_signatures": fields(SW[0], [("svix-id", SW[1]), ("svix-timestamp", SW[2]),
        ("svix-signature", "v1a,bm90LWVkMjU1MTk= " + SW[3] + " v2,AAAA")]),
    "github_docs_vector": fields(GH[0], [("x-hub-signature-256", GH[1]),
                                         ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")]),
    "stripe_dotnet_vector": fields(STRIPE_BODY, [("stripe-signature", STRIPE)]),
    "slack_docs_vector": fields(SLACK_BODY, [("x-slack-signature", SLACK[0]),
                                              ("x-slack-request-timestamp", SLACK[1])]),
    "shopify_vector": fields(SHOPIFY[0], [("x-shopify-hmac-sha256", SHOPIFY[1]),
                                          ("x-shopify-webhook-id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")]),
    "custom_hex_known_key": fields(b"{}", [("x-signature", custom_hex_sig(b"{}", "msg_1", NOW * 1000)),
        ("x-timestamp", str(NOW * 1000)), ("x-id", "msg_1")]),
    "custom_base64_padless": fields(b"{}", [("x-body-mac", "CVFZ1g07NPgNT2Gai3InlMzEs9dl4BqFarV2g6i7F0E")]),
    "duplicates_and_junk": fields(b"x", [("x-hub-signature-256", GH[1]), ("x-hub-signature-256", GH[1]),
        ("stripe-signature", "t=1,t=2,v1="), ("webhook-signature", "v1"), ("webhook-timestamp", "-1"),
        ("x-slack-signature", "v0=zz"), ("x-slack-request-timestamp", "999999999999999999")]),
}
for k, v in hp.items():
    write("header_parsers", k, v)
write("header_parsers", "non_ascii_value", fields(b"", [("stripe-signature", "t=1")])[:-1] + "é".encode("latin-1"))

# secrets: the raw input
for k, v in {
    "whsec_vector": b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "base64_vector": b"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "stripe_whole_string": b"whsec_test_secret",
    "github_text": b"It's a Secret to Everybody",
    "slack_text_not_hex": b"8f742231b10e8888abcd99yyyzzz85a5",
    "hex_mixed_case": b"0123456789abcdefABCDEF",
    "base64_padding_spaces": b"  AAECAw==  ",
    "invalid_quoted": b"zz-super-secret!",
    "hex_too_long": b"ab" * 1025,
    "base64_too_long": b"QUFB" * 700,
    "empty_whsec": b"whsec_",
    "non_utf8": b"\xff\xfewhsec_\x00AA==",
}.items():
    write("secrets", k, v)

# verify_mutations: [scheme, mutation, pos, byte] + body
SCHEMES = ["standard-webhooks", "stripe", "github", "slack", "shopify", "custom-hex", "custom-base64"]
BODIES = [SW[0], STRIPE_BODY, GH[0], SLACK_BODY, SHOPIFY[0], b"{}", b""]
for s, name in enumerate(SCHEMES):
    for m, label in [(0, "flip_body"), (3, "change_signature"), (4, "change_timestamp"),
                     (8, "equivalent_encoding"), (11, "truncate_signature")]:
        if m == 4 and name in ("github", "shopify", "custom-base64"):
            m, label = 5, "change_id"
        write("verify_mutations", f"{name}_{label}", bytes([s, m, 7, 0x41]) + BODIES[s])

# layer: [scheme, flags, content-length mode, byte, chunk size] + body \0 headers
def layer(s, flags, cl, b, chunk, body, headers=()):
    return bytes([s, flags, cl, b, chunk]) + fields(body, list(headers))
for k, v in {
    "sw_signed_true_length": layer(0, 1, 1, 1, 64, SW[0]),
    "stripe_signed_chunked": layer(1, 1 | 2, 0, 1, 7, STRIPE_BODY[:200]),
    "github_vector_wrong_key": layer(2, 0, 1, 1, 5, GH[0], [("x-hub-signature-256", GH[1])]),
    "slack_signed_lying_length": layer(3, 1, 2, 200, 32, SLACK_BODY),
    "shopify_signed_read_error": layer(4, 1 | 4, 0, 1, 3, SHOPIFY[0]),
    "custom_hex_signed_duplicate_length": layer(5, 1 | (1 << 3), 3, 1, 16, b"{}"),
    "custom_base64_repeated_past_limit": layer(6, 1, 0, 255, 255, b"0123456789abcdef" * 2),
    "sw_unsigned_garbage_length": layer(0, 0, 4, 1, 1, SW[0], [("webhook-id", SW[1]),
        ("webhook-timestamp", SW[2]), ("webhook-signature", SW[3]), ("content-type", "application/json")]),
}.items():
    write("layer", k, v)
