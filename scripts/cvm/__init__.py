"""Customer Value Warehouse helper scripts (synthetic raw data generation and friends)."""

from pathlib import Path

# The dbt project's root (this package lives in its scripts/ directory): every module that
# finds a project file starts here.
PROJECT_DIR = Path(__file__).resolve().parents[2]

# The raw directory when CVM_RAW_DIR is unset (var raw_dir in dbt_project.yml, as dbt resolves
# it): `make build` generates its demo data there.
DEMO_RAW_DIR = PROJECT_DIR / "data" / "demo"
