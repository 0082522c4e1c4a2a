# The README's two commands: `make demo` and `make test`. Both create .venv/ when it is missing
# (and only then), installing the pinned stack from third_party/constraints.txt.
PY := .venv/bin/python
export MUJOCO_GL ?= egl
export PYTHONHASHSEED := 0
# tcmalloc makes big-tensor JAX work 2.5-3x faster on CPU VMs; used only when present.
TCMALLOC := $(wildcard /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4)
ifneq ($(TCMALLOC),)
export LD_PRELOAD := $(TCMALLOC)
endif

.PHONY: demo test test-slow venv clean-venv

$(PY):
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -c third_party/constraints.txt -e '.[dev]'

venv: $(PY)

demo: $(PY)
	$(PY) -m experiments.demo

test: $(PY)
	$(PY) -m pytest -q tests

test-slow: $(PY)
	$(PY) -m pytest -q -m slow tests

clean-venv:
	rm -rf .venv
