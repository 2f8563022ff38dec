# Build, deploy, invoke, infra lint, smoke and function budgets. Included by the root Makefile,
# which sets SHELL (bash) and .SHELLFLAGS (-euo pipefail -c).

VENV_LINT ?= .venv-lint
VENV_TOOLS ?= .venv-tools
LAMBDA_FUNCTIONS ?= triage diagnose remediate resolve sweeper
LAMBDA_PACKAGE ?= firebreak-functions
SAM_TEMPLATE ?= infra/template.yaml
SAM_CONFIG ?= infra/samconfig.toml
FN ?= triage
EVENT ?= events/sns-metric-alarm.json

.PHONY: tools venv-lint build deploy invoke watch lint-infra smoke bench-functions

# cargo-lambda and zig come from PyPI (requirements-tools.txt) into $(VENV_TOOLS).
build deploy invoke watch: export PATH := $(abspath $(VENV_TOOLS))/bin:$(PATH)

tools:
	scripts/venv-tools.sh

venv-lint:
	scripts/venv-lint.sh

# target/lambda/<fn>/bootstrap and target/lambda/<fn>/bootstrap.zip, release, arm64.
build: tools
	cargo lambda build --release --arm64 -p $(LAMBDA_PACKAGE)
	cargo lambda build --release --arm64 -p $(LAMBDA_PACKAGE) --output-format zip
	@for fn in $(LAMBDA_FUNCTIONS); do \
	  test -f "target/lambda/$$fn/bootstrap.zip" || { echo "build: missing target/lambda/$$fn/bootstrap.zip" >&2; exit 1; }; \
	  printf '%-10s %s bytes\n' "$$fn" "$$(stat -c %s "target/lambda/$$fn/bootstrap.zip")"; \
	done

# sam build runs cargo lambda (rust-cargolambda, a SAM beta feature enabled in samconfig.toml).
deploy: tools venv-lint
	$(VENV_LINT)/bin/sam build --config-file "$(abspath $(SAM_CONFIG))" --template $(SAM_TEMPLATE)
	$(VENV_LINT)/bin/sam deploy --config-file "$(abspath $(SAM_CONFIG))"

# Against a running `make watch` (cargo lambda watch): make invoke FN=triage EVENT=events/...json
invoke: tools
	cargo lambda invoke $(FN) --data-file $(EVENT)

watch: tools
	cargo lambda watch -p $(LAMBDA_PACKAGE)

lint-infra:
	scripts/lint-infra.sh

smoke:
	scripts/smoke.sh

bench-functions:
	scripts/bench-functions.sh
