#!/usr/bin/env bash
# Mutation testing of the verification core with cargo-mutants: every mutant of src/verify.rs,
# src/keyring.rs, src/secret.rs, src/scheme/ and src/middleware/ (about 780), each built with
# --all-features and run against the whole test suite. A mutant the suite does not catch
# ("missed") is a behaviour no test pins. Results go to mutants.out/ (gitignored): missed.txt,
# caught.txt, unviable.txt, timeout.txt and one log per mutant. See TESTING.md.
#
# Not run by CI: the whole set takes hours on two cores. Extra arguments go to cargo mutants,
# and after `--` to `cargo test`, so one question costs seconds:
#
#   scripts/mutants.sh                                   # everything (hours)
#   scripts/mutants.sh --list                            # the mutants, without running them
#   scripts/mutants.sh -f src/verify.rs -F any_matches -- --test signature_lists
#   scripts/mutants.sh --in-place -F 'Key::should_warn' -- --test grace_warning
#
# --in-place mutates src/ in this tree and reuses its target/ (no fresh build of every
# dependency in a scratch copy); cargo-mutants restores each file, but do not edit while it runs.
# MUTANTS_TIMEOUT (seconds, default 300) bounds each test run: the suite has time-budgeted
# concurrency tests, and a mutant that makes a loop endless is reported as a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

# The version this script was written against; it installs with the crate's toolchain.
version=27.1.0
if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install cargo-mutants --locked --version "$version"
fi

exec cargo mutants \
  --all-features \
  --file src/verify.rs \
  --file src/keyring.rs \
  --file src/secret.rs \
  --file 'src/scheme/*.rs' \
  --file 'src/middleware/*.rs' \
  --timeout "${MUTANTS_TIMEOUT:-300}" \
  --output . \
  "$@"
