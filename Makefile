# Common tasks. Everything also works with plain npm scripts (see README).
.PHONY: install start test bench bench-quick report compose-up compose-down tools

install:
	npm ci

start:
	npm start

test:
	npm test

tools:
	scripts/ensure-tools.sh

# A full baseline run (10 minutes) with its report under reports/.
bench:
	npm run bench -- --scenario baseline

bench-quick:
	npm run bench -- --scenario baseline --duration 0.05

# Regenerate a report from its raw data: make report DIR=reports/<run>
report:
	npm run report -- $(DIR)

compose-up:
	docker compose up -d --build

compose-down:
	docker compose down
