# The README's two commands: `make run` and `make test`. Everything else is a helper for them.
BUILD ?= build
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3
PORT ?= 7000
ORCHESTRATORS ?= 1

.PHONY: all deps build run test unit integration fault-long fuzz fuzz-long bench bench-migration \
	migration-restarts migration-restarts-long clean

all: build

deps:
	@bash scripts/install-deps

$(BUILD)/build.ninja $(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

# A self-managing local cluster (`cairn dev`): an orchestrator on port 7700 and 2 shards x RF 3
# plus 1 spare on ports $(PORT)..$(PORT)+6. It prints how to connect once the cluster serves.
# `make run ORCHESTRATORS=3`: three orchestrators (7700-7702) on a local 3-member etcd
# (docs/orchestrator-ha.md).
run: build
	@echo "Starting cairn dev (data in ./cairn-data). Once it says ready, connect with: redis-cli -p $(PORT)"
	@echo "API and dashboard: http://127.0.0.1:7700/v1/status; Ctrl-C stops everything and keeps the data."
	./$(BUILD)/cairn dev --port $(PORT) --data-dir ./cairn-data --orchestrators $(ORCHESTRATORS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

integration: build
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration tests/cluster tests/fault

# The long fault run (10 minutes); its last result is recorded in docs/fault-testing.md.
fault-long: build
	bash tests/fault/run_long.sh

# Migrations while machines restart; results in docs/migration.md "Recipe runs".
migration-restarts: build
	bash scripts/migration-under-restarts.sh $(BUILD)/cairn

migration-restarts-long: build
	LONG=1 bash scripts/migration-under-restarts.sh $(BUILD)/cairn

fuzz: deps
	bash tests/fuzz/run.sh 30

fuzz-long: deps
	bash tests/fuzz/run.sh 600

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration tests/cluster tests/fault
	bash tests/fuzz/run.sh 30

bench: build
	bash bench/redis_compare.sh

# Loads 1 GiB into one shard, adds a shard and measures the migration (bench/RESULTS.md).
bench-migration: build
	bash bench/migration.sh

clean:
	rm -rf $(BUILD)
