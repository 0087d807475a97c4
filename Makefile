# keyseal — `make help` lists the targets.
SHELL := /bin/bash
# One Lambda per folder under functions/ (each has a main.go).
FUNCTIONS := $(patsubst functions/%/main.go,%,$(wildcard functions/*/main.go))
GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.6.1
ENV ?= dev
CDK := infra/_tools/node_modules/.bin/cdk
CDKLOCAL := infra/_tools/node_modules/.bin/cdklocal
# jsii warns on every synth that Node 20 is end of life; it works.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# build's tags come from ENV's cdk.json (scripts/buildtags): keyseal_nogcp
# and keyseal_noazure leave out the SDK of a cloud ENV configures no
# identity for. bin/<function>/tags records them; synth refuses a build
# without a provider ENV configures (infra/stack.LoadConfig).
build: ## Build one arm64 bootstrap per Lambda into bin/<function>/, with ENV's tags (no GCP/Azure SDK unless ENV's cdk.json configures it)
	@tags=$$($(GO) run ./scripts/buildtags -env $(ENV)) || exit 1; \
	echo "build ENV=$(ENV): -tags $$tags"; \
	for f in $(FUNCTIONS); do \
	  echo "build $$f"; \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags "$$tags" -trimpath -ldflags='-s -w' \
	    -o bin/$$f/bootstrap ./functions/$$f || exit 1; \
	  echo "$$tags" > bin/$$f/tags; \
	done

cli: ## Build the keyseal admin CLI into bin/keyseal (or: go install ./scripts/keyseal)
	$(GO) build -trimpath -o bin/keyseal ./scripts/keyseal

run: ## Run the whole API locally in dev mode (no Docker, no AWS) on 127.0.0.1:8080
	$(GO) run ./scripts/localserver -mode dev

run-clouds: ## make run, plus gcp-kms and azure-kv providers on in-process GCP Cloud KMS and Azure Key Vault stand-ins
	$(GO) run ./scripts/localserver -mode dev -clouds

run-localstack: ## Run the local server against LocalStack + DynamoDB Local (starts them)
	bash scripts/standins.sh install && bash scripts/standins.sh start
	eval "$$(bash scripts/standins.sh env)" && $(GO) run ./scripts/localserver -mode localstack -data-dir .keyseal-localstack

test: ## Lint, then the unit, infra, bench, fuzz and integration tiers (starts the stand-ins, stops them after)
	bash scripts/test.sh

test-unit: ## Unit tests only (no stand-ins)
	$(GO) test -race -count=1 ./...

test-integration: ## Integration tier only: the integration-tagged tests (starts and stops the stand-ins like make test)
	bash scripts/test.sh integration

test-console: ## The admin console's browser tests: headless Chromium (installed under .cache/chromium) against dev mode; screenshots in test-artifacts/console/
	bash scripts/chromium.sh install
	$(GO) test -count=1 -tags integration -run Console -v ./shared/console/

fuzz-api: ## Fuzz the dev-mode server from its OpenAPI document with schemathesis (loopback; KEYSEAL_FUZZ_EXAMPLES, KEYSEAL_FUZZ_SEED)
	bash scripts/fuzz-api.sh

bench: ## Benchmarks: session issue beside its floor (in process and over HTTP), one sweep over 10,000 tenants, each Lambda's cold start beside a minimal function's (make drill: the kill switch)
	$(GO) test -run '^$$' -bench . -benchmem ./shared/app/ ./shared/session/ ./shared/tenantkms/
	$(GO) test -run '^$$' -bench ColdStart -benchtime 21x ./scripts/coldstart/

drill: ## Kill-switch drill against LocalStack (time from DisableKey to sealed and to first 503)
	bash scripts/standins.sh install && bash scripts/standins.sh start
	eval "$$(bash scripts/standins.sh env)" && $(GO) test -tags integration -run '^$$' -bench KillSwitch -benchtime 8x ./localstack/suite/

drill-push: ## The kill-switch drill with push sealing: DisableKey plus its CloudTrail event on the bus (20 rounds)
	bash scripts/standins.sh install && bash scripts/standins.sh start
	eval "$$(bash scripts/standins.sh env)" && $(GO) test -tags integration -run '^$$' -bench KillSwitchPushDrill -benchtime 20x ./localstack/suite/

drill-store: ## The kill-switch drill with 10% and 30% of keyseal's DynamoDB requests faulted (throttle, 500, lost answers)
	bash scripts/standins.sh install && bash scripts/standins.sh start
	eval "$$(bash scripts/standins.sh env)" && $(GO) test -tags integration -run '^$$' -bench KillSwitchDrillStoreFaults -benchtime 8x -timeout 60m ./localstack/suite/

infra-deps: ## Install the pinned CDK CLI and cdklocal (npm, into infra/_tools/node_modules)
	@test -x $(CDK) -a -x $(CDKLOCAL) || npm ci --prefix infra/_tools --no-audit --no-fund

synth: build infra-deps ## Synthesize the stack of ENV (dev, staging, prod) into cdk.out/
	$(CDK) synth -c env=$(ENV) --quiet
	@echo "cdk.out/keyseal-$(ENV).template.json"

bootstrap: build infra-deps ## Prepare ENV's AWS account and region for CDK deploys (once)
	$(CDK) bootstrap -c env=$(ENV)

diff: build infra-deps ## Show what deploying ENV would change in its AWS account
	$(CDK) diff -c env=$(ENV)

deploy: build infra-deps ## Deploy ENV (needs AWS credentials; cdk bootstrap once per account/region)
	$(CDK) deploy -c env=$(ENV) --require-approval broadening --outputs-file cdk.out/outputs-$(ENV).json

destroy: infra-deps ## Delete the stack of ENV (prod keeps its table, key and logs)
	$(CDK) destroy -c env=$(ENV)

deploy-localstack: build infra-deps ## Deploy the dev stack to LocalStack in Docker (docker compose -f localstack/docker-compose.yml up -d first)
	$(CDKLOCAL) bootstrap -c env=dev
	$(CDKLOCAL) deploy -c env=dev --require-approval never --outputs-file cdk.out/outputs-localstack.json

lint: ## gofmt, go vet, staticcheck (each with and without -tags integration), go mod tidy check
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags integration ./...
	$(GO) -C infra vet ./...
	cd infra && $(GO) run $(STATICCHECK) ./...
	@# -diff changes nothing and fails when tidy would change go.mod or go.sum.
	@for m in . infra; do \
	  $(GO) -C $$m mod tidy -diff || { echo "$$m/go.mod or go.sum is not tidy: run go mod tidy there (diff above)"; exit 1; }; \
	done

standins-start: ## Start LocalStack and DynamoDB Local (host mode)
	bash scripts/standins.sh install && bash scripts/standins.sh start

standins-stop: ## Stop the stand-ins
	bash scripts/standins.sh stop

clean: ## Remove build output and local data
	rm -rf bin cdk.out .keyseal .keyseal-localstack test-artifacts

.PHONY: help build cli run run-clouds run-localstack test test-unit test-integration test-console fuzz-api bench drill drill-push drill-store infra-deps synth bootstrap diff deploy destroy deploy-localstack lint standins-start standins-stop clean
