"""share: partner data exchange between doorstep installs, each side sharing only what it chose.

Populations and sharing levels (`policy`), linked installs and signed messages (`identity`),
offline signed bundles (`bundle`) and the private overlap online (`private`).
"""

from doorstep.share.bundle import BundleReport, export_bundle, import_bundle
from doorstep.share.identity import ShareError, link_partner, own_public_key
from doorstep.share.policy import Visibility, partner_visibility, visibility

__all__ = [
    "BundleReport",
    "ShareError",
    "Visibility",
    "export_bundle",
    "import_bundle",
    "link_partner",
    "own_public_key",
    "partner_visibility",
    "visibility",
]
