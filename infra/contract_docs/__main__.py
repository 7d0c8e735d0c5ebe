"""`python -m contract_docs [ROOT]`: write the contract documents under ROOT/docs/contracts/."""

from __future__ import annotations

import sys
from pathlib import Path

from contract_docs import generated_documents


def main(argv: list[str]) -> int:
    """Write every document whose content changed; print what was written."""
    root = Path(argv[0]) if argv else Path.cwd()
    for relative, text in generated_documents().items():
        path = root / relative
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
