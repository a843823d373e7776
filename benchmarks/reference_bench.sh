#!/usr/bin/env bash
# Reproduces the committed report in docs/results/: the embedded judge (both modes) and the no-model
# baselines on the local suite, plus the prompt-format and injection probes. About an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
G=.venv/bin/gavel
$G bench --suite local --mode verdict --both-orders --limit 25 -o docs/results/verdict
$G bench --suite local --mode critique --max-new-tokens 256 --limit 6 -o docs/results/critique
$G bench -b llmbar-natural,hhh,mt-bench,qags --mode verdict --formats all --injection --limit 30 -o docs/results/probes
