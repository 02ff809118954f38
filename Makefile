# Two commands on a fresh machine with Python 3.10+ (README, "Set up and run"):
#   make run    the environment (.venv), adaptbook, the datasets, then the main job: every chapter and the comparison
#   make test   the environment with the dev extra, then the test command (tools/test.sh), as CI runs it
# OUT, MODE and SEEDS pass to `adaptbook run all` (make run OUT=results MODE=quick SEEDS=3).
OUT ?= results
MODE ?=
SEEDS ?=
RUN_ARGS = --out $(OUT) $(if $(MODE),--mode $(MODE)) $(if $(SEEDS),--seeds $(SEEDS))

.PHONY: run test setup setup-dev
run: setup
	.venv/bin/adaptbook run all $(RUN_ARGS)

test: setup-dev
	. .venv/bin/activate && bash tools/test.sh

setup:
	bash tools/setup.sh run

setup-dev:
	bash tools/setup.sh dev
