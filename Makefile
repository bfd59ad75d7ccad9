.PHONY: run test setup bench-peers
# Set up everything and start the platform on http://127.0.0.1:8000
run:
	bash scripts/run.sh
# Set up everything and run the whole test suite (what CI runs)
test:
	bash scripts/test.sh
setup:
	bash scripts/setup.sh
