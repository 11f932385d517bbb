# One-command set-up and test. `make lab` to study, `make test` to check everything.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
COURSE_STAMP := $(VENV)/.installed-course
DEV_STAMP    := $(VENV)/.installed-dev

.PHONY: site slides setup setup-dev lab lint test unit notebooks execute student grade warm test-browser benchmark benchmark-notebooks benchmark-quick clean-data

setup: $(COURSE_STAMP)  ## create .venv (if missing) and install the course: the package and the notebooks' tools
setup-dev: $(DEV_STAMP)  ## the course, plus what developers and CI need: tests, linter, the benchmark's peers

# Each reinstalls whenever pyproject.toml changes. On machines whose pip caps torch at 2.14.1 (see
# README), the resolver picks torch 2.14.1 with torchvision 0.29.1; elsewhere any recent pair.
$(COURSE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e "."
	$(BIN)/python -c "import torch, torchvision; print('torch', torch.__version__, '| torchvision', torchvision.__version__)"
	touch $(COURSE_STAMP)

$(DEV_STAMP): $(COURSE_STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[dev]"
	touch $(DEV_STAMP)

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup  ## open JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG)

# `pytest --nbval` from the repository root is the whole test: conftest.py adds the notebook
# options (current environment, sanitizer, tolerances for trained outputs; see the README).
test: setup-dev  ## unit tests, then every notebook re-run and compared with its stored outputs
	$(BIN)/python -m pytest --nbval

lint: setup-dev  ## ruff: the linter and the formatter's check (configuration in pyproject.toml)
	$(BIN)/ruff check
	$(BIN)/ruff format --check

unit: setup-dev  ## unit tests only, in a minute or two (without the slow ones: quick benchmark, nbval runs)
	$(BIN)/python -m pytest tests -m "not slow"

notebooks: setup-dev  ## the notebooks only (nbval: strict, with tolerances for trained outputs)
	$(BIN)/python -m pytest notebooks --nbval

CHROMIUM ?= /usr/bin/chromium

test-browser: setup-dev  ## notebooks 4 and 6 (its upload button) in a real JupyterLab + Chromium (Playwright); screenshots in build/browser/
	test -x $(CHROMIUM) || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[browser]"
	FCN_BROWSER_TEST=1 CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests/browser -v

student: setup  ## write the student notebooks (solutions removed) to build/student/
	$(BIN)/python -m course_utils.student

# SUBMISSIONS: one folder per learner holding their student notebooks (see course_utils/grade.py);
# GRADE_FLAGS: more options, e.g. GRADE_FLAGS="--full --timeout 1800".
grade: setup  ## grade the learners' notebooks with the self-checks: make grade SUBMISSIONS=folder; build/grade/report.html
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=folder  (folder/<learner>/NN_*.ipynb)"; exit 2; }
	$(BIN)/python -m course_utils.grade "$(SUBMISSIONS)" $(GRADE_FLAGS)

warm: setup  ## train and cache every checkpoint the notebooks use, so each runs in seconds (lectures)
	$(BIN)/python -m course_utils.recipes

benchmark: setup-dev  ## speed and quality vs Unet, fcn_resnet50, an equal-size Unet; learning curves (about 2 hours on 2 AVX2 cores); data/benchmark.json + -curves.png
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[benchmark]"
	$(BIN)/python -m benchmarks

benchmark-notebooks: setup-dev  ## only the notebooks, cold and warm, and the course's quality (about 10 minutes on 2 AVX2 cores); data/benchmark-notebooks.json
	$(BIN)/python -m benchmarks --notebooks-only

benchmark-quick: setup-dev  ## the same, small (about 10 minutes on 2 cores): a smoke test; writes data/benchmark-quick.json + -curves.png
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[benchmark]"
	$(BIN)/python -m benchmarks --quick

# Everything in data/ but the files git tracks there (.gitignore's exceptions: the README and the
# reference benchmark runs).
clean-data:  ## delete generated checkpoints and caches (the notebooks recreate them); keeps a downloaded dataset
	find data -mindepth 1 -maxdepth 1 ! -name README.md ! -name benchmark.json ! -name benchmark-curves.png ! -name benchmark-notebooks.json ! -name oxford-iiit-pet -exec rm -rf {} +

site: setup-dev  ## the course as a website in build/site/ (Sphinx + myst-nb, from the stored outputs; works offline once built)
	$(BIN)/python -m publish.site

slides: setup  ## lecture slides of notebooks 1-6 in build/slides/ (reveal.js, from the stored outputs; works offline once built)
	$(BIN)/python -m publish.slides

execute: setup-dev  ## re-run every notebook in a fresh kernel and store its outputs (before committing)
	$(BIN)/python -m course_utils.run_notebooks
