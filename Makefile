.PHONY: run test setup bench-peers
# Set up everything and start the platform on http://127.0.0.1:8000
run:
	bash scripts/run.sh
# Set up everything and run the whole test suite (what CI runs)
test:
	bash scripts/test.sh
setup:
	bash scripts/setup.sh
# Our engine vs LLaMA-Factory and TRL, interleaved medians (needs ../shared/peer-bench/setup.sh first)
bench-peers:
	bash bench/peers/compare_all.sh small 3
