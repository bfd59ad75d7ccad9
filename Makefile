.PHONY: run test setup lint format gen-api bench-peers
# Set up everything and start the platform on http://127.0.0.1:8000
run:
	bash scripts/run.sh
# Set up everything and run the whole test suite (what CI runs; it runs `make lint` first)
test:
	bash scripts/test.sh
setup:
	bash scripts/setup.sh
# Every static check: ruff, ruff format, mypy, import-linter (Python layering); ESLint, Prettier,
# dependency-cruiser (frontend layering) and vue-tsc. Needs `make setup` (or a test run) first.
lint:
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports
	cd frontend && npm run --silent lint && npm run --silent typecheck
# Rewrite the code into the project's format (Python and frontend) and apply safe lint fixes.
format:
	.venv/bin/ruff check --fix src tests bench
	.venv/bin/ruff format src tests bench
	cd frontend && npm run --silent format
# Regenerate the OpenAPI document and the typed web client from the server's routes and schemas.
gen-api:
	.venv/bin/loraforge openapi > frontend/openapi.json
	cd frontend && npm run --silent gen:api
# Our engine vs LLaMA-Factory and TRL, interleaved medians (needs ../shared/peer-bench/setup.sh first)
bench-peers:
	bash bench/peers/compare_all.sh small 3
