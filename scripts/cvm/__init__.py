"""Customer Value Warehouse helper scripts (synthetic raw data generation and friends)."""

from pathlib import Path

# The dbt project's root (this package lives in its scripts/ directory): every module that
# finds a project file starts here.
PROJECT_DIR = Path(__file__).resolve().parents[2]
