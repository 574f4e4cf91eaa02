"""mixwise: what did each channel really return, where should the next budget go, and are we
spending it as planned?

The one handle a user holds is :class:`mixwise.Workspace`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Workspace", "__version__"]

if TYPE_CHECKING:
    from mixwise.workspace import Workspace


def __getattr__(name: str) -> Any:
    # Lazy so that `import mixwise` (and the CLI's --help) stays fast.
    if name == "Workspace":
        from mixwise.workspace import Workspace

        return Workspace
    raise AttributeError(name)
