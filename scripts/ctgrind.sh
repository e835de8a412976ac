#!/usr/bin/env bash
# Secret-independence check under valgrind memcheck ("ctgrind"): examples/ctgrind.rs marks the
# secret undefined, and memcheck reports every branch or memory index that depends on it. The
# only one allowed is the verdict, the branch in Verifier::check on whether a signature matched
# (in check itself or in the `bool::from(Choice)` inlined there); any report whose innermost
# frame is elsewhere (keying, MACing, the comparison in any_matches/ct_eq) fails the check.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
  apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build -q --release --example ctgrind
log=$(mktemp)
valgrind --tool=memcheck --log-file="$log" target/release/examples/ctgrind
python3 - "$log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.split(r"==\d+== (?=Conditional jump|Use of uninitialised|Syscall param)", text)[1:]
verdict, other = 0, []
for block in blocks:
    # The frames valgrind lists at the innermost address are one instruction seen through
    # inlining. The verdict is in Verifier::check itself, or in the `bool::from(Choice)` it
    # makes of the comparison, inlined there; nothing else inlined into check may branch.
    frames = re.findall(r"(?:at|by) (0x[0-9A-F]+): (.+)", block)
    inlined = [name for address, name in frames if address == frames[0][0]] if frames else ["?"]
    # (Names as valgrind prints them: "webhook_guard::verify::Verifier::check (verify.rs:257)",
    # or, inlined, the generic instance "check<(), …> (verify.rs:320)"; "from
    # (src/lib.rs:155)" for subtle's `impl From<Choice> for bool`; this crate's own lib.rs has
    # no `From`.)
    in_check = lambda name: (
        re.search(r"Verifier::check(<.*>)? \(", name) is not None
        or re.match(r"check<.*> \(verify\.rs:\d+\)", name) is not None
    )
    verdict_frame = in_check(inlined[0]) or (
        re.fullmatch(r"from \(src/lib\.rs:\d+\)", inlined[0]) is not None
        and len(inlined) > 1
        and in_check(inlined[1])
    )
    if verdict_frame:
        verdict += 1
    else:
        other.append(block.strip()[:1200])
print(f"ctgrind: {verdict} report(s) at the verdict in Verifier::check (expected), {len(other)} elsewhere")
for block in other:
    print(block, "\n---")
sys.exit(1 if other or verdict == 0 else 0)
PY
status=$?
rm -f "$log"
exit $status
