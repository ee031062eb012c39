# Two entry points, each doing all set-up on a fresh machine:
#   make demo   create .venv with Python >= 3.12, install vidcolor, run the embedded demo
#   make test   create .venv, install vidcolor with its test extras, run the test suite
VENV ?= .venv
# The newest Python >= 3.12 found: PYTHON if given, python3.14/3.13/3.12/python3 on PATH, else pyenv's.
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 python3; do \
	  if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then command -v $$p; exit; fi; done; \
	  if command -v pyenv >/dev/null 2>&1; then for v in $$(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])' | sort -Vr); do \
	    p="$$(pyenv root)/versions/$$v/bin/python3"; if [ -x "$$p" ]; then echo "$$p"; exit; fi; done; fi)
ifeq ($(origin PYTHON),file)
WHY_PYTHON = the newest Python >= 3.12 found; pass PYTHON=/path/to/python3.12 to choose another
else
WHY_PYTHON = given as PYTHON
endif

.PHONY: demo test venv

$(VENV)/bin/python:
	@test -n "$(PYTHON)" || { echo "make: no Python >= 3.12 found; install one (e.g. pyenv install 3.12) or pass PYTHON=/path/to/python3.12" >&2; exit 1; }
	@echo "make: creating $(VENV) with $(PYTHON), Python $$("$(PYTHON)" -c 'import platform; print(platform.python_version())') ($(WHY_PYTHON))"
	"$(PYTHON)" -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

# A plain install, as users get it from `pip install "vidcolor[vs]"`: every dependency, PySceneDetect
# included, is declared in setup.cfg, so nothing is installed behind pip's back.
$(VENV)/.installed: $(VENV)/bin/python setup.cfg pyproject.toml
	$(VENV)/bin/python -m pip install --quiet -e ".[vs,test]"
	# lets vspipe find this venv's Python (adds this installation's entry to VapourSynth's config)
	$(VENV)/bin/vapoursynth config >/dev/null
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/vidcolor demo -o demo-output
	@echo
	@echo "Next: vidcolor and vspipe are in $(VENV)/bin, which is not on PATH. Either call them there,"
	@echo "  $(VENV)/bin/vidcolor colorize film.mp4 -o film-color.mp4 --ref keyframe.png"
	@echo "  $(VENV)/bin/vspipe -c y4m colorize.vpy - | ffmpeg -i - film-color.mkv   (see README: VapourSynth)"
	@echo "or activate the venv once per shell: source $(VENV)/bin/activate, then vidcolor --help."

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q
