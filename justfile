# Recipes run through ./dev, which bootstraps .venv first.
set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

default:
    @just --list

# Run the whole stack in the foreground on embedded defaults (Ctrl-C stops it all)
up *args:
    @puras dev up "$@"

# Bring the stack up, push examples/, run jobs, print results, shut down
demo *args:
    @puras dev demo "$@"

# The whole test suite (unit, integration, end to end, the dashboard in Chromium)
test *args:
    @bash scripts/ensure_browser.sh --soft
    @pytest "$@"

# Unit tests only (no servers)
test-unit *args:
    pytest tests/unit "$@"

# Benchmarks, with the Celery peer in the same run
bench *args:
    @python bench/run.py "$@"

# Chaos run: 1,000 mixed jobs while every service and nats-server is killed -9 and restarted
chaos *args:
    @python scripts/chaos.py "$@"

# Lint and type-check
lint:
    ruff format --check .
    ruff check .
    mypy libs/common/src libs/bundle/src libs/client/src services/*/src cli/src sdk/src mcp/src tests bench scripts

# Format the code
fmt:
    ruff format .
    ruff check --fix .
