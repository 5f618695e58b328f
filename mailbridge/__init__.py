"""mailbridge: Members' Enquiries by email."""

import sys
from pathlib import Path

__version__ = "0.1.0"


def bundled_templates() -> Path:
    """The templates/ shipped with mailbridge: the source tree's, or the installed copy.

    An editable install or a checkout reads the top-level templates/ beside the package; a
    wheel installs them as data files under <prefix>/share/mailbridge/templates.
    """
    source_tree = Path(__file__).resolve().parent.parent / "templates"
    return (
        source_tree
        if source_tree.is_dir()
        else Path(sys.prefix) / "share" / "mailbridge" / "templates"
    )
